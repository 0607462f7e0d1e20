// The patch grid of one image or video as the Qwen3-VL processor reports it (image_grid_thw / video_grid_thw):
// t temporal patches (frame pairs; 1 for an image), h x w patches of patch_size pixels.
#pragma once

#include <cstdint>

namespace qwen3vl {

struct GridTHW {
  int64_t t = 1;
  int64_t h = 0;
  int64_t w = 0;

  int64_t patches() const { return t * h * w; }
  // Tokens after the 2x2 spatial merge (what the language model sees).
  int64_t merged_tokens(int64_t merge_size = 2) const { return t * (h / merge_size) * (w / merge_size); }
};

}  // namespace qwen3vl
