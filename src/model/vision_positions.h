// Where each ViT patch sits, and what follows from it: the interpolated learned position embedding, the 2D rotary
// angles and the attention segments of Qwen3VLVisionModel (transformers/vision_utils.py helpers
// get_vision_position_ids, get_vision_interpolation_indices_and_weights, get_vision_cu_seqlens, and
// Qwen3VLVisionRotaryEmbedding). Pure index math on grid_thw; no weights except the table being blended.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/ops.h"
#include "vision/grid_thw.h"

namespace qwen3vl {

// Full-resolution patch coordinates of one ViT token.
struct PatchPosition {
  int64_t row = 0;
  int64_t col = 0;
};

// (row, col) of every patch of one grid in the processor's patch order ([t*h*w]): temporal slices in turn, each
// one m x m block after another (blocks row-major), the block's members row-major, i.e. token
// (t, bh, bw, ih, iw) sits at (bh*m + ih, bw*m + iw), the reshape and permute of transformers'
// Qwen2VLImageProcessor._preprocess (models/qwen2_vl/image_processing_qwen2_vl.py). Every temporal slice repeats the
// same positions.
std::vector<PatchPosition> patch_positions(const GridTHW& grid, int64_t merge_size);

// One axis of the bilinear (align_corners=True) resampling of a `side`-long table axis to `size` patches:
// HF's _interpolation_axis_taps_weights. src = index*(side-1) / max(size-1, 1) in float32; taps floor(src) and
// floor(src)+1 clamped to side-1; weights 1 - |src - floor - offset| clamped at 0, in float32 exactly as written
// there (so weight_hi is 1 - |frac - 1|, which is not always bit-equal to frac).
struct AxisTaps {
  int64_t lo = 0, hi = 0;
  float weight_lo = 0.f, weight_hi = 0.f;
};
AxisTaps pos_embed_axis_taps(int64_t index, int64_t size, int64_t side);

// The four taps of one patch into the side x side table (index = row*side + col), in HF's order
// (row_lo, col_lo), (row_lo, col_hi), (row_hi, col_lo), (row_hi, col_hi); weight = row weight * col weight (float32).
struct PosEmbedTaps {
  int64_t index[4] = {0, 0, 0, 0};
  float weight[4] = {0.f, 0.f, 0.f, 0.f};
};
// For every patch of `grid` in processor order ([t*h*w]).
std::vector<PosEmbedTaps> pos_embed_taps(const GridTHW& grid, int64_t side, int64_t merge_size);

// out[n, D] = sum_k table[taps[i].index[k]] * taps[i].weight[k]. HF: (pos_embed(indices) * weights[:, :, None]).sum(1)
// then .to(activation dtype): the table rows (bf16 for bf16 checkpoints) times the float32 weights promote to float32,
// the four products are summed in float32 in tap order, and only the sum is rounded to the activation dtype.
void interpolate_pos_embed(const WeightMatrix& table, const PosEmbedTaps* taps, int64_t n, float* out,
                           Precision precision);

// Qwen3VLVisionRotaryEmbedding ("axial" rope): inv_freq[j] = 1 / theta^(2j / (head_dim/2)) for j < head_dim/4, in
// float32. Angles for a patch: [row*inv_freq, col*inv_freq] (head_dim/2 values), repeated twice to head_dim, so dim j
// pairs with j + head_dim/2 in rotate_half. cos/sin stay float32 (HF applies the vision rotary in float32).
class VisionRotary {
 public:
  // theta: vision_config rope_parameters.rope_theta, 10000 in every released config (hard-coded in 4.57).
  explicit VisionRotary(int64_t head_dim, double theta = 10000.0);

  // cos, sin: [n, head_dim]
  void compute(const PatchPosition* positions, int64_t n, float* cos, float* sin) const;

  int64_t head_dim() const { return head_dim_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }

 private:
  int64_t head_dim_;
  std::vector<float> inv_freq_;  // [head_dim/4]
};

// Attention segment boundaries: one segment of h*w patches per temporal slice of every grid, in order
// (get_vision_cu_seqlens with merge_temporal=False). [1 + sum t], starting at 0.
std::vector<int64_t> vision_cu_seqlens(const std::vector<GridTHW>& grids);

}  // namespace qwen3vl
