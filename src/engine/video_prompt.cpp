#include "engine/video_prompt.h"

#include "core/error.h"

namespace qwen3vl {

std::string video_placeholder_text(const ProcessedVideo& video, int64_t merge_size, int64_t temporal_patch_size) {
  const std::vector<double> stamps = video.group_timestamps(temporal_patch_size);
  if (static_cast<int64_t>(stamps.size()) < video.grid.t)
    throw_error(video.source, ": ", stamps.size(), " frame-pair timestamps for ", video.grid.t, " temporal patches");
  const int64_t per_pair = (video.grid.h / merge_size) * (video.grid.w / merge_size);
  std::string pads;
  pads.reserve(static_cast<size_t>(per_pair) * 13);
  for (int64_t k = 0; k < per_pair; ++k) pads += "<|video_pad|>";
  std::string out;
  for (int64_t t = 0; t < video.grid.t; ++t)
    out += timestamp_text(stamps[static_cast<size_t>(t)]) + "<|vision_start|>" + pads + "<|vision_end|>";
  return out;
}

std::string expand_video_placeholders(const std::string& text, const std::vector<ProcessedVideo>& videos,
                                      int64_t merge_size, int64_t temporal_patch_size, VideoPlaceholderStyle style) {
  static const std::string kPad = "<|video_pad|>";
  static const std::string kTriple = "<|vision_start|><|video_pad|><|vision_end|>";
  std::string out;
  size_t from = 0, used = 0;
  for (;;) {
    size_t at = text.find(kPad, from);
    if (at == std::string::npos) break;
    size_t length = kPad.size();
    if (style == VideoPlaceholderStyle::Transformers4) {
      // 4.57 replaced the first whole triple if there was one, else the first bare pad.
      const size_t triple = text.find(kTriple, from);
      if (triple != std::string::npos) {
        at = triple;
        length = kTriple.size();
      }
    }
    if (used == videos.size())
      throw_error("the prompt has more video placeholders than the ", videos.size(), " videos given");
    out.append(text, from, at - from);
    out += video_placeholder_text(videos[used], merge_size, temporal_patch_size);
    ++used;
    from = at + length;
  }
  if (used != videos.size())
    throw_error("the prompt has ", used, " video placeholders but ", videos.size(), " videos were given");
  return out + text.substr(from);
}

std::vector<ChatMessage> single_turn_with_media(const std::string& system, const std::string& user,
                                                const std::vector<ContentPart::Type>& media) {
  std::vector<ChatMessage> messages;
  if (!system.empty()) {
    ChatMessage message;
    message.role = "system";
    message.content.push_back(ContentPart{ContentPart::Type::Text, system});
    messages.push_back(message);
  }
  ChatMessage turn;
  turn.role = "user";
  for (ContentPart::Type type : media) turn.content.push_back(ContentPart{type, ""});
  turn.content.push_back(ContentPart{ContentPart::Type::Text, user});
  turn.content_is_string = media.empty();
  messages.push_back(turn);
  return messages;
}

}  // namespace qwen3vl
