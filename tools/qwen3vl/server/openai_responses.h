// OpenAI response shapes: chat.completion objects, chat.completion.chunk server-sent events, usage, model lists.
// Extensions other clients ignore: message.reasoning_content (Thinking checkpoints, as vLLM and DeepSeek name it),
// message.grounding (boxes and points mapped to each original image), usage.prompt_tokens_details.image_tokens,
// and "images" / "timings" with the per-image sizes and the time spent per stage.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "chat_service.h"

namespace qwen3vl {
namespace server {

struct ResponseHeader {
  std::string id;       // "chatcmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
};

nlohmann::ordered_json usage_json(const ChatOutcome& outcome, const PreparedChat& prepared);
nlohmann::ordered_json images_json(const PreparedChat& prepared);
nlohmann::ordered_json videos_json(const PreparedChat& prepared);
nlohmann::ordered_json timings_json(const ChatOutcome& outcome, const PreparedChat& prepared, double total_seconds);

std::string completion_json(const ResponseHeader& header, const ChatOutcome& outcome, const PreparedChat& prepared,
                            double total_seconds);

// One "data: {...}\n\n" event of a chat.completion.chunk with a single choice; finish_reason empty = null.
std::string chunk_event(const ResponseHeader& header, const nlohmann::ordered_json& delta,
                        const std::string& finish_reason = "");
// The closing chunk with usage and no choices (stream_options.include_usage).
std::string usage_event(const ResponseHeader& header, const ChatOutcome& outcome, const PreparedChat& prepared,
                        double total_seconds);
std::string error_event(const std::string& error_body);
inline const char* done_event() { return "data: [DONE]\n\n"; }

std::string dump_json(const nlohmann::ordered_json& value);

}  // namespace server
}  // namespace qwen3vl
