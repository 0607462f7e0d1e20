// Antialiased bicubic resize of an RGB8 image, bit-exact with what transformers' default (torchvision) Qwen2-VL /
// Qwen3-VL image processor runs on CPU: `torchvision.transforms.v2.functional.resize(uint8 CHW, (h, w), BICUBIC,
// antialias=True)`, i.e. ATen's `_upsample_bicubic2d_aa` uint8 kernel (UpSampleKernel.cpp /
// UpSampleKernelAVXAntialias.h). That kernel is PIL's separable resampler with Keys' cubic (a = -0.5) and the filter
// support widened by the downscale factor, but NOT PIL's arithmetic: weights are quantized to int16 at a per-axis
// precision (PIL uses a fixed 22-bit int32), and Pillow 13 also picks the pass order per size, so Pillow's
// Image.resize differs from it on some pixels (measured: up to 30 levels where Pillow runs the vertical pass first).
#pragma once

#include <cstdint>
#include <vector>

#include "vision/image_decode.h"

namespace qwen3vl {

// Per output index of one axis: first source index, number of taps and int16 weights (ATen's
// `_compute_index_ranges_int16_weights`). Exposed for the unit tests.
struct ResizeAxisWeights {
  std::vector<int64_t> first;    // [out] first source index
  std::vector<int64_t> count;    // [out] number of taps used
  std::vector<int16_t> weights;  // [out * taps_stride]
  int64_t taps_stride = 0;       // max taps per output index (ceil(support) * 2 + 1)
  unsigned precision = 0;        // fixed-point fraction bits of `weights`
};
ResizeAxisWeights compute_bicubic_aa_weights(int64_t input_size, int64_t output_size);

// Horizontal pass (if the width changes) into a uint8 buffer, then vertical pass (if the height changes), as ATen
// does; an unchanged size returns a copy. Memory: the output plus one in_height x out_width x 3 intermediate (never
// more than the input when downscaling).
Image resize_bicubic_antialias(const Image& image, int out_width, int out_height);

}  // namespace qwen3vl
