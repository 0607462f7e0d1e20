// The reference ops on hand-checkable inputs, and the interleaved MRoPE slot layout.
#include <gtest/gtest.h>

#include <cmath>

#include "model/mrope.h"
#include "ops/ops.h"

namespace qwen3vl {
namespace {

TEST(Ops, LinearWithBf16WeightsAndRounding) {
  // w = [[1, 2], [0.5, -1]] in bf16
  const uint16_t w[4] = {f32_to_bf16(1.f), f32_to_bf16(2.f), f32_to_bf16(0.5f), f32_to_bf16(-1.f)};
  const WeightMatrix matrix{DType::BF16, w, 2, 2};
  const float x[4] = {1.f, 1.f, 3.f, 0.00390625f};
  float y[4];
  ops::linear(x, 2, matrix, y, Precision::F32);
  EXPECT_FLOAT_EQ(y[0], 3.f);
  EXPECT_FLOAT_EQ(y[1], -0.5f);
  EXPECT_FLOAT_EQ(y[2], 3.0078125f);
  ops::linear(x, 2, matrix, y, Precision::BF16);
  EXPECT_FLOAT_EQ(y[2], 3.0f);  // 3.0078125 is not a bf16 value: rounds to 3.0
}

TEST(Ops, RmsNormMatchesTheFormula) {
  const float x[4] = {1.f, 2.f, 3.f, 4.f};
  const float scale[4] = {1.f, 1.f, 2.f, 0.5f};
  float out[4];
  ops::rms_norm(x, 1, 4, WeightVector{DType::F32, scale, 4}, 1e-6f, out, Precision::F32);
  const float inv_rms = 1.0f / std::sqrt(30.0f / 4 + 1e-6f);
  EXPECT_NEAR(out[0], 1 * inv_rms, 1e-6);
  EXPECT_NEAR(out[2], 6 * inv_rms, 1e-6);
  EXPECT_NEAR(out[3], 2 * inv_rms, 1e-6);
}

TEST(Ops, RotaryRotatesDimPairsHalfApart) {
  float x[4] = {1.f, 0.f, 0.f, 0.f};  // one head, head_dim 4: pairs (0,2) and (1,3)
  const float angle = 0.3f;
  const float cos[4] = {std::cos(angle), 1.f, std::cos(angle), 1.f};
  const float sin[4] = {std::sin(angle), 0.f, std::sin(angle), 0.f};
  ops::apply_rotary(x, 1, 1, 4, cos, sin, Precision::F32);
  EXPECT_NEAR(x[0], std::cos(angle), 1e-7);
  EXPECT_NEAR(x[2], std::sin(angle), 1e-7);
  EXPECT_EQ(x[1], 0.f);
}

TEST(Ops, CausalAttentionWithGroupedKvHeads) {
  // 2 query heads share 1 kv head; head_dim 1; 2 tokens.
  const float q[4] = {1.f, 2.f, 1.f, 0.f};     // [token][head]
  const float k[2] = {0.f, 1.f};
  const float v[2] = {10.f, 20.f};
  float out[4];
  ops::causal_attention(q, 2, 0, k, v, ops::AttentionShape{2, 1, 1}, 1.0f, out, Precision::F32);
  EXPECT_FLOAT_EQ(out[0], 10.f);  // token 0 sees only itself
  EXPECT_FLOAT_EQ(out[1], 10.f);
  const float p1 = std::exp(1.f) / (1.f + std::exp(1.f));  // token 1, head 0: scores 0 and 1
  EXPECT_NEAR(out[2], 10.f * (1 - p1) + 20.f * p1, 1e-5);
  EXPECT_NEAR(out[3], 15.f, 1e-5);  // head 1: q = 0, uniform
}

TEST(Ops, CausalAttentionOverCachedRows) {
  const float q[1] = {1.f};
  const float k[3] = {0.f, 0.f, 0.f};
  const float v[3] = {3.f, 6.f, 9.f};
  float out[1];
  ops::causal_attention(q, 1, 2, k, v, ops::AttentionShape{1, 1, 1}, 1.0f, out, Precision::F32);
  EXPECT_NEAR(out[0], 6.f, 1e-6);  // uniform over all three cached rows
}

// Which axis (0 T, 1 H, 2 W) each frequency slot reads, recovered from cos values at distinct positions.
std::vector<int> slot_axes(const std::vector<int64_t>& section, int64_t head_dim) {
  TextConfig config;
  config.head_dim = head_dim;
  config.rope_theta = 10000.0;
  config.mrope_section = section;
  const TextRotary rotary(config);
  MropePositions p;
  const int64_t by_axis[3] = {100, 2000, 30000};  // far apart, so every slot's angle tells its axis
  p.t = {by_axis[0]};
  p.h = {by_axis[1]};
  p.w = {by_axis[2]};
  std::vector<float> cos(head_dim), sin(head_dim);
  rotary.compute(p, cos.data(), sin.data(), Precision::F32);
  std::vector<int> axes;
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const float inv_freq = 1.0f / std::pow(10000.0f, static_cast<float>(2 * i) / head_dim);
    int axis = 0;
    for (int a = 1; a < 3; ++a)
      if (std::fabs(std::sin(by_axis[a] * inv_freq) - sin[i]) < std::fabs(std::sin(by_axis[axis] * inv_freq) - sin[i]))
        axis = a;
    axes.push_back(axis);
    EXPECT_EQ(cos[i], cos[i + head_dim / 2]);
  }
  return axes;
}

TEST(Mrope, ReleasedSectionsInterleaveTHWThenT) {
  const std::vector<int> axes = slot_axes({24, 20, 20}, 128);
  for (int i = 0; i < 60; ++i) EXPECT_EQ(axes[i], i % 3) << "slot " << i;
  for (int i = 60; i < 64; ++i) EXPECT_EQ(axes[i], 0) << "slot " << i;
}

TEST(Mrope, UnequalSmallSections) {
  // [6, 5, 5] over head_dim 32: H at 1,4,..,13, W at 2,5,..,14, T elsewhere (0,3,..,15).
  const std::vector<int> axes = slot_axes({6, 5, 5}, 32);
  const std::vector<int> expected = {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0};
  EXPECT_EQ(axes, expected);
}

}  // namespace
}  // namespace qwen3vl
