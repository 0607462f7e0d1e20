// Text generation for one request: prefill the prompt, then decode token by token with the sampler, streaming
// text as whole UTF-8 characters, stopping on eos ids, stop strings or the token limit.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/loaded_model.h"
#include "engine/sampler.h"
#include "model/lora_adapter.h"
#include "vision/video_processor.h"

namespace qwen3vl {

struct GenerationRequest {
  std::vector<int32_t> prompt_ids;          // with each <|image_pad|> already expanded to its merged tokens
  std::vector<ProcessedImage> images;       // in the order of their placeholder groups
  // Optional, empty or one per image: that image's vision-tower output computed earlier (encode_images in
  // engine/vision_prefill.h, e.g. kept in a cache keyed by image content); null entries are encoded here.
  std::vector<std::shared_ptr<const VisionOutput>> image_features;
  // Videos in the order of their placeholder groups (each expanded with its `<t.t seconds>` stamps, see
  // engine/video_prompt.h); encoded by their own vision-tower call.
  std::vector<ProcessedVideo> videos;
  int64_t max_new_tokens = 256;
  SamplingParams sampling;
  std::vector<int32_t> stop_token_ids;     // generation ends after one of these; it is not part of the text
  std::vector<std::string> stop_strings;   // generation ends where one appears; the text stops before it
  // LoRA adapters this request runs with (model/lora_adapter.h); null: the checkpoint alone.
  std::shared_ptr<const AdaptedWeights> adapters;
};

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double vision_seconds = 0.0;   // image preprocessing is the caller's; this is the vision tower and the scatter
  double prefill_seconds = 0.0;  // the decoder over the prompt (vision excluded)
  double decode_seconds = 0.0;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, including a final stop token if one ended generation
  std::string text;             // decoded text without special tokens, cut before a stop string
  std::string finish_reason;    // "stop" (eos id or stop string), "length", or "cancelled"
  GenerationStats stats;
};

// Receives text as it becomes final; returning false cancels generation.
using TextCallback = std::function<bool(const std::string& text)>;

// Sampling defaults from the checkpoint's generation_config.json.
SamplingParams default_sampling(const GenerationConfig& config);

GenerationResult generate(const LoadedModel& model, const GenerationRequest& request,
                          const TextCallback& on_text = nullptr);

}  // namespace qwen3vl
