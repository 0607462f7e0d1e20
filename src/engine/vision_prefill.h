// Prefill inputs of a prompt with images: token embeddings with the vision tower's output scattered into the
// <|image_pad|> rows (Qwen3VLModel.forward's masked_scatter), the DeepStack features of those rows, and the 3-D
// positions with the rope delta for decoding (get_rope_index).
#pragma once

#include <memory>
#include <vector>

#include "engine/loaded_model.h"
#include "model/lora_adapter.h"
#include "model/rope_index.h"
#include "model/text_decoder.h"
#include "vision/image_processor.h"
#include "vision/video_processor.h"

namespace qwen3vl {

struct PrefillInputs {
  std::vector<float> embeds;                           // [n, hidden]
  RopeIndex rope;                                      // positions of the n tokens, rope delta
  std::vector<int64_t> visual_rows;                    // rows of <|image_pad|> and <|video_pad|> tokens, in order
  std::vector<std::vector<float>> deepstack_features;  // per level: [visual_rows.size(), hidden]

  DeepstackInjection deepstack() const { return DeepstackInjection{visual_rows, &deepstack_features}; }
};

// The vision tower's output for each image on its own: embeds [merged tokens of the image, hidden] and each DeepStack
// level likewise. All images go through one tower call (each its own attention segment), then the rows are split,
// so the result equals what build_prefill scatters. Callers may keep an entry (e.g. in a cache keyed by image
// content, pixel budget and the adapters that change the tower) and pass it back to build_prefill as precomputed
// features. `adapters`: the request's adapter set (null: none).
std::vector<std::shared_ptr<const VisionOutput>> encode_images(const LoadedModel& model,
                                                               const std::vector<ProcessedImage>& images,
                                                               const AdaptedWeights* adapters = nullptr);

// The same for videos: one tower call for all of them (HF encodes images and videos in separate calls).
std::vector<std::shared_ptr<const VisionOutput>> encode_videos(const LoadedModel& model,
                                                               const std::vector<ProcessedVideo>& videos,
                                                               const AdaptedWeights* adapters = nullptr);

// `images` / `videos` in the order of their placeholder groups in `input_ids`. Throws Error when the counts disagree.
// Image rows get the image features, video rows the video features; DeepStack rows follow sequence order.
// `precomputed`: empty, or one entry per image; a non-null entry is that image's encode_images output and is used
// instead of running the tower (the image's grid must still be set; its pixel_values may be empty).
PrefillInputs build_prefill(const LoadedModel& model, const std::vector<int32_t>& input_ids,
                            const std::vector<ProcessedImage>& images,
                            const std::vector<std::shared_ptr<const VisionOutput>>& precomputed = {},
                            const std::vector<ProcessedVideo>& videos = {},
                            const AdaptedWeights* adapters = nullptr);

}  // namespace qwen3vl
