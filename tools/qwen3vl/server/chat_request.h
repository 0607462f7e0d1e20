// POST /v1/chat/completions bodies: OpenAI's chat shape (plus the usual vLLM / qwen-vl-utils extensions) parsed and
// type-checked into a ChatRequest. Nothing here touches the model; every problem is an ApiError 400 naming the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"

namespace qwen3vl {
namespace server {

// One image or video of the conversation, in prompt order (the order the chat template emits their placeholders).
struct MediaPart {
  enum class Kind { Image, Video };
  Kind kind = Kind::Image;
  std::string where;  // "messages[1].content[0]", for error messages
  std::string url;    // data: URL, file:// URL or absolute path, http(s) URL; empty for a frame list
  // A video given as pre-sampled frames: each frame an image source and, optionally, its time in seconds.
  struct Frame {
    std::string url;
    std::optional<double> timestamp;
  };
  std::vector<Frame> frames;
  // Video sampling and budget (qwen-vl-utils keys): fps / sample_fps, nframes, min_frames / max_frames,
  // video_start / video_end (seconds), total_pixels (over all frames; max_pixels is then per frame).
  std::optional<double> fps, start_seconds, end_seconds;
  std::optional<int64_t> num_frames, min_frames, max_frames, total_pixels;
  std::optional<int64_t> min_pixels, max_pixels;   // per-part pixel budget (qwen-vl-utils keys)
  std::string detail;                              // image_url.detail: "", "auto", "low" or "high"
};

// One entry of llama-server's per-request `"lora": [{"id": N, "scale": S}]` (and of POST /lora-adapters' scales).
struct LoraChoice {
  int64_t id = 0;
  double scale = 0.0;
};

struct ChatRequest {
  std::string model;                    // empty: the served model; else it or a LoRA adapter's name
  std::vector<ChatMessage> messages;    // for the chat template
  std::vector<MediaPart> media;
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage
  std::optional<int64_t> max_tokens;    // max_completion_tokens, else max_tokens
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k;
  std::optional<uint64_t> seed;
  double presence_penalty = 0.0, frequency_penalty = 0.0;
  std::vector<std::string> stop;
  // Pixel budget for every image of the request (top level or mm_processor_kwargs), and the total visual tokens.
  std::optional<int64_t> min_pixels, max_pixels, max_visual_tokens;
  // llama-server's "lora": when given, exactly these adapters run (unlisted ones are off), whatever `model` names.
  std::optional<std::vector<LoraChoice>> lora;
};

// Throws ApiError (400) for malformed JSON, wrong types, out-of-range values and unsupported options.
ChatRequest parse_chat_request(const std::string& body);
// The same from a parsed body (a JSON object), whose "messages" it takes apart (left null).
ChatRequest chat_request_from_json(nlohmann::json& root);

// For the other endpoints' parsers: a JSON value's type in error messages ("an array"); a member that is absent or
// null (not given, as clients send null for unset options) as nullptr; an optional boolean member, ApiError 400
// naming `param` when it is something else.
const char* type_name(const nlohmann::json& value);
const nlohmann::json* member(const nlohmann::json& object, const char* key);
std::optional<bool> get_bool(const nlohmann::json& object, const char* key, const std::string& param);

// A JSON request body, refused (ApiError 400) when malformed, nested deeper than 64 levels or holding more than
// 2^18 values (walking and freeing deep values recurses; each value costs a parsed node).
nlohmann::json parse_json_body(const std::string& body);

// [{"id": N, "scale": S}, ...]: each id a non-negative integer listed once, each scale a finite number. Throws
// ApiError (400) naming the entry at fault under `param` ("lora[1].scale"). Whether the ids exist is the caller's.
std::vector<LoraChoice> parse_lora_choices(const nlohmann::json& value, const std::string& param);

}  // namespace server
}  // namespace qwen3vl
