// Interleaved multimodal rotary embedding of the Qwen3-VL text decoder (transformers' Qwen3VLTextRotaryEmbedding).
// Each token has three positions (T, H, W). Frequency slot i of head_dim/2 takes its angle from
//   H if i % 3 == 1 and i < 3 * mrope_section[1],  W if i % 3 == 2 and i < 3 * mrope_section[2],  T otherwise,
// so slots run T,H,W,T,H,W,... and end in T slots. With T == H == W this is ordinary 1-D RoPE.
#pragma once

#include <cstdint>
#include <vector>

#include "io/model_config.h"
#include "ops/ops.h"

namespace qwen3vl {

// Positions of n tokens on the three axes; each vector has n entries.
struct MropePositions {
  std::vector<int64_t> t, h, w;
  int64_t size() const { return static_cast<int64_t>(t.size()); }
};

// Text-only tokens: start, start+1, ... on all three axes (what get_rope_index gives without images).
MropePositions text_positions(int64_t start, int64_t count);

class TextRotary {
 public:
  explicit TextRotary(const TextConfig& config);

  // cos, sin: [positions.size(), head_dim], computed in float and rounded to the activation dtype as HF does.
  void compute(const MropePositions& positions, float* cos, float* sin, Precision precision) const;

  int64_t head_dim() const { return head_dim_; }

 private:
  int64_t head_dim_;
  std::vector<float> inv_freq_;  // [head_dim/2]: 1 / theta^(2i/head_dim), in float as torch computes it
  std::vector<int> slot_axis_;   // [head_dim/2]: 0 = T, 1 = H, 2 = W
};

}  // namespace qwen3vl
