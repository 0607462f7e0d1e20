// 3-D positions of a multimodal prompt: transformers' Qwen3VLModel.get_rope_index (5.x form, grouping tokens by
// modality). Text runs count up on all three axes; an image (or one temporal slice of a video) of merged grid
// gh x gw starting at p gets T = p, H = p + row, W = p + col, and the text after it continues at p + max(gh, gw).
// Decoding continues at cache index + rope_delta on all axes.
#pragma once

#include <cstdint>
#include <vector>

#include "io/model_config.h"
#include "model/mrope.h"
#include "vision/grid_thw.h"

namespace qwen3vl {

struct RopeIndex {
  MropePositions positions;  // one entry per prompt token
  int64_t rope_delta = 0;    // max position + 1 - prompt length
};

// `image_grids` in prompt order; `video_grids` per video (each temporal slice becomes its own group, as the
// prompt gives each frame pair its own <|vision_start|>...<|vision_end|>). Throws Error when the number of
// image/video pad tokens does not match the grids.
RopeIndex get_rope_index(const std::vector<int32_t>& input_ids, const ModelConfig& config,
                         const std::vector<GridTHW>& image_grids, const std::vector<GridTHW>& video_grids = {});

}  // namespace qwen3vl
