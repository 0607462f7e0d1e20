// The Qwen3-VL image processor: transformers 5.x `Qwen2VLImageProcessor` (the torchvision backend, which
// AutoImageProcessor picks for the released preprocessor_config.json's "Qwen2VLImageProcessorFast"), reproduced
// bit for bit on an already decoded RGB8 image:
//   smart_resize (factor patch_size * merge_size) -> uint8 antialiased bicubic resize (resize.h) ->
//   fused rescale + normalize in float32: (float(x) - mean*255) / (std*255) -> patchify with the frame repeated
//   temporal_patch_size times (the reshape and permute of its _preprocess).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vision/grid_thw.h"
#include "vision/image_decode.h"

namespace qwen3vl {

struct ImageProcessorConfig {                         // preprocessor_config.json
  int64_t min_pixels = 65536, max_pixels = 16777216;  // size.shortest_edge / size.longest_edge (or min/max_pixels)
  int64_t patch_size = 16, temporal_patch_size = 2, merge_size = 2;
  float image_mean[3] = {0.5f, 0.5f, 0.5f}, image_std[3] = {0.5f, 0.5f, 0.5f};
  double rescale_factor = 1.0 / 255.0;
  bool do_resize = true, do_rescale = true, do_normalize = true;
};

// Reads preprocessor_config.json. A missing file gives the released Qwen3-VL defaults above; keys missing from an
// existing file keep those defaults too (transformers would fall back to Qwen2-VL's class defaults, patch 14 and
// CLIP mean/std, which no Qwen3-VL checkpoint can use). Top-level "min_pixels"/"max_pixels" override "size", as in
// Qwen2VLImageProcessor.__init__. Only resample 3 (bicubic) is accepted. Errors name the file and key.
ImageProcessorConfig load_image_processor_config(const std::string& preprocessor_config_json_path);

// Per-run / per-image overrides of the config's min/max pixels (HF: `size={"shortest_edge", "longest_edge"}`).
struct PixelBudget {
  std::optional<int64_t> min_pixels, max_pixels;
};

enum class ResizeRule {
  Transformers,  // transformers models/qwen2_vl/image_processing_qwen2_vl.py smart_resize
  QwenVlUtils,   // qwen-vl-utils 0.0.14 vision_process.py smart_resize: max(factor, round) first, no clamp on downscale
};

// transformers' smart_resize: returns {height, width}, multiples of factor. Throws Error when the aspect ratio
// max/min exceeds 200. Rounding is Python's round-half-to-even; math as IEEE double like Python floats.
std::pair<int64_t, int64_t> smart_resize(int64_t height, int64_t width, int64_t factor, int64_t min_pixels,
                                         int64_t max_pixels);
// qwen-vl-utils' variant (its own defaults when called through fetch_image: min 4*factor^2, max 16384*factor^2;
// here the caller passes the bounds). Also throws when max_pixels < min_pixels (its assert).
std::pair<int64_t, int64_t> smart_resize_qwen_vl_utils(int64_t height, int64_t width, int64_t factor,
                                                       int64_t min_pixels, int64_t max_pixels);

struct ProcessedImage {
  GridTHW grid;
  int64_t original_width = 0, original_height = 0, resized_width = 0, resized_height = 0;
  // [grid.t*grid.h*grid.w, 3*temporal_patch*patch*patch] float32, rows in the processor's patch order:
  // row = ((bh * (gw/M) + bw) * M + ih) * M + iw for patch (bh*M+ih, bw*M+iw); element c*Tp*P*P + t*P*P + dy*P + dx.
  std::vector<float> pixel_values;
};

// Preprocesses one decoded image. Memory: besides the caller's image, at most the resized uint8 image (plus one
// intermediate of the resize) and pixel_values, whose size is set by the pixel budget, not by the input.
// With ResizeRule::QwenVlUtils the size comes from qwen-vl-utils' smart_resize, with the budget's bounds or else
// qwen-vl-utils' own defaults (min 4, max 16384 merged tokens; the config's are ignored), and the resize is still
// torchvision's. qwen-vl-utils itself resizes with Pillow (different fixed-point weights and, in Pillow 13, a
// size-dependent pass order), so its pixels are not reproduced, only its sizes.
ProcessedImage preprocess_image(const Image& image, const ImageProcessorConfig& config, const PixelBudget& budget = {},
                                ResizeRule rule = ResizeRule::Transformers);

// Patchify alone, exposed for tests and for callers that resized elsewhere: `resized` must already be a multiple of
// patch_size*merge_size on both sides.
ProcessedImage patchify_image(const Image& resized, const ImageProcessorConfig& config);

}  // namespace qwen3vl
