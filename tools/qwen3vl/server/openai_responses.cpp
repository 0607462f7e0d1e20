#include "openai_responses.h"

namespace qwen3vl {
namespace server {

using ojson = nlohmann::ordered_json;

std::string dump_json(const ojson& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ojson usage_json(const ChatOutcome& outcome, const PreparedChat& prepared) {
  ojson usage;
  usage["prompt_tokens"] = outcome.prompt_tokens;
  usage["completion_tokens"] = outcome.completion_tokens;
  usage["total_tokens"] = outcome.prompt_tokens + outcome.completion_tokens;
  usage["prompt_tokens_details"] = {
      {"cached_tokens", 0}, {"image_tokens", prepared.image_tokens}, {"video_tokens", prepared.video_tokens}};
  return usage;
}

ojson images_json(const PreparedChat& prepared) {
  ojson images = ojson::array();
  for (const PreparedChat::ImageInfo& image : prepared.images)
    images.push_back({{"width", image.width},
                      {"height", image.height},
                      {"resized_width", image.resized_width},
                      {"resized_height", image.resized_height},
                      {"visual_tokens", image.visual_tokens}});
  return images;
}

ojson videos_json(const PreparedChat& prepared) {
  ojson videos = ojson::array();
  for (const PreparedChat::VideoInfo& video : prepared.videos)
    videos.push_back({{"width", video.width},
                      {"height", video.height},
                      {"resized_width", video.resized_width},
                      {"resized_height", video.resized_height},
                      {"frames", video.frames},
                      {"visual_tokens", video.visual_tokens}});
  return videos;
}

ojson timings_json(const ChatOutcome& outcome, const PreparedChat& prepared, double total_seconds) {
  const GenerationStats& s = outcome.stats;
  return {{"media_ms", prepared.media_seconds * 1e3},   {"vision_ms", s.vision_seconds * 1e3},
          {"prefill_ms", s.prefill_seconds * 1e3},      {"decode_ms", s.decode_seconds * 1e3},
          {"total_ms", total_seconds * 1e3},
          {"decode_tokens_per_second", s.decode_seconds > 0 ? s.generated_tokens / s.decode_seconds : 0.0}};
}

std::string completion_json(const ResponseHeader& header, const ChatOutcome& outcome, const PreparedChat& prepared,
                            double total_seconds) {
  ojson message;
  message["role"] = "assistant";
  message["content"] = outcome.content;
  if (prepared.thinking) message["reasoning_content"] = outcome.reasoning;
  if (!outcome.grounding.is_null()) message["grounding"] = outcome.grounding;
  ojson choice;
  choice["index"] = 0;
  choice["message"] = std::move(message);
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = outcome.finish_reason;
  ojson body;
  body["id"] = header.id;
  body["object"] = "chat.completion";
  body["created"] = header.created;
  body["model"] = header.model;
  body["choices"] = ojson::array({std::move(choice)});
  body["usage"] = usage_json(outcome, prepared);
  body["images"] = images_json(prepared);
  if (!prepared.videos.empty()) body["videos"] = videos_json(prepared);
  body["timings"] = timings_json(outcome, prepared, total_seconds);
  return dump_json(body);
}

namespace {

ojson chunk_base(const ResponseHeader& header) {
  ojson body;
  body["id"] = header.id;
  body["object"] = "chat.completion.chunk";
  body["created"] = header.created;
  body["model"] = header.model;
  return body;
}

}  // namespace

std::string chunk_event(const ResponseHeader& header, const ojson& delta, const std::string& finish_reason) {
  ojson choice;
  choice["index"] = 0;
  choice["delta"] = delta;
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason.empty() ? ojson() : ojson(finish_reason);
  ojson body = chunk_base(header);
  body["choices"] = ojson::array({std::move(choice)});
  return "data: " + dump_json(body) + "\n\n";
}

std::string usage_event(const ResponseHeader& header, const ChatOutcome& outcome, const PreparedChat& prepared,
                        double total_seconds) {
  ojson body = chunk_base(header);
  body["choices"] = ojson::array();
  body["usage"] = usage_json(outcome, prepared);
  body["images"] = images_json(prepared);
  if (!prepared.videos.empty()) body["videos"] = videos_json(prepared);
  body["timings"] = timings_json(outcome, prepared, total_seconds);
  return "data: " + dump_json(body) + "\n\n";
}

std::string error_event(const std::string& error_body) { return "data: " + error_body + "\n\n"; }

}  // namespace server
}  // namespace qwen3vl
