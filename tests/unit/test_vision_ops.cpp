// The ops the vision tower added to the op interface, on hand-checkable inputs: linear with bias (one rounding),
// LayerNorm with bias, the two GELUs, and non-causal attention inside segments.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ops/ops.h"

namespace qwen3vl {
namespace {

TEST(VisionOps, LinearAddsTheBiasBeforeTheSingleRounding) {
  const float w[2] = {1.f, 0x1p-8f};  // one output row
  const WeightMatrix matrix{DType::F32, w, 1, 2};
  const float b = 0x1p-8f;
  const WeightVector bias{DType::F32, &b, 1};
  const float x[2] = {1.f, 1.f};
  float y = 0.f;
  // x·w = 1 + 2^-8 (a bf16 tie that rounds to 1.0); + bias = 1 + 2^-7, a bf16 value. PyTorch's addmm rounds once.
  ops::linear(x, 1, matrix, &y, Precision::BF16, &bias);
  EXPECT_EQ(y, 1.0f + 0x1p-7f);
  ops::linear(x, 1, matrix, &y, Precision::BF16);  // without the bias the tie goes to even
  EXPECT_EQ(y, 1.0f);
  ops::linear(x, 1, matrix, &y, Precision::F32, &bias);
  EXPECT_EQ(y, 1.0f + 0x1p-7f);
}

TEST(VisionOps, LinearWithBf16BiasAndTwoRows) {
  const uint16_t w[4] = {f32_to_bf16(1.f), f32_to_bf16(2.f), f32_to_bf16(-1.f), f32_to_bf16(0.5f)};
  const uint16_t b[2] = {f32_to_bf16(0.25f), f32_to_bf16(-3.f)};
  const WeightMatrix matrix{DType::BF16, w, 2, 2};
  const WeightVector bias{DType::BF16, b, 2};
  const float x[4] = {1.f, 2.f, -2.f, 4.f};
  float y[4];
  ops::linear(x, 2, matrix, y, Precision::F32, &bias);
  EXPECT_EQ(y[0], 5.25f);   // 1 + 4 + 0.25
  EXPECT_EQ(y[1], -3.f);    // -1 + 1 - 3
  EXPECT_EQ(y[2], 6.25f);   // -2 + 8 + 0.25
  EXPECT_EQ(y[3], 1.f);     // 2 + 2 - 3
}

TEST(VisionOps, LayerNormWithWeightAndBias) {
  const float x[4] = {1.f, 2.f, 3.f, 4.f};
  const float gamma[4] = {1.f, 1.f, 2.f, 0.5f};
  const float beta[4] = {0.f, 1.f, 0.f, -1.f};
  float out[4];
  ops::layer_norm(x, 1, 4, WeightVector{DType::F32, gamma, 4}, WeightVector{DType::F32, beta, 4}, 1e-6f, out,
                  Precision::F32);
  const double rstd = 1.0 / std::sqrt(1.25 + 1e-6);  // mean 2.5, biased variance 1.25
  EXPECT_NEAR(out[0], -1.5 * rstd, 1e-6);
  EXPECT_NEAR(out[1], -0.5 * rstd + 1.0, 1e-6);
  EXPECT_NEAR(out[2], 0.5 * rstd * 2.0, 1e-6);
  EXPECT_NEAR(out[3], 1.5 * rstd * 0.5 - 1.0, 1e-6);

  // Rows are independent; bf16 rounds the final value only.
  const float two_rows[8] = {1.f, 2.f, 3.f, 4.f, 10.f, 10.f, 10.f, 10.f};
  float rounded[8];
  ops::layer_norm(two_rows, 2, 4, WeightVector{DType::F32, gamma, 4}, WeightVector{DType::F32, beta, 4}, 1e-6f,
                  rounded, Precision::BF16);
  for (int d = 0; d < 4; ++d) EXPECT_EQ(rounded[d], round_to_bf16(out[d]));
  for (int d = 0; d < 4; ++d) EXPECT_EQ(rounded[4 + d], beta[d]);  // a constant row normalizes to 0
}

TEST(VisionOps, GeluTanhAndExactGelu) {
  const float x[5] = {-3.f, -1.f, 0.f, 1.f, 2.f};
  float tanh_out[5], erf_out[5];
  ops::gelu_tanh(x, 5, tanh_out, Precision::F32);
  ops::gelu_erf(x, 5, erf_out, Precision::F32);
  for (int i = 0; i < 5; ++i) {
    const double v = x[i];
    const double tanh_ref = 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    const double erf_ref = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    EXPECT_NEAR(tanh_out[i], tanh_ref, 1e-6) << x[i];
    EXPECT_NEAR(erf_out[i], erf_ref, 1e-6) << x[i];
  }
  EXPECT_NEAR(tanh_out[3], 0.8411920f, 1e-6);  // the two GELUs differ in the 4th digit: not interchangeable
  EXPECT_NEAR(erf_out[3], 0.8413447f, 1e-6);
  float rounded[5];
  ops::gelu_erf(x, 5, rounded, Precision::BF16);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(rounded[i], round_to_bf16(erf_out[i]));
  ops::gelu_tanh(x, 5, rounded, Precision::BF16);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(rounded[i], round_to_bf16(tanh_out[i]));
}

TEST(VisionOps, SegmentAttentionIsFullInsideAndClosedBetweenSegments) {
  // head_dim 1, one head; segment 0 = rows 0..2, segment 1 = rows 3..4.
  const float q[5] = {0.f, 1.f, 2.f, 1.f, -1.f};
  const float k[5] = {0.f, 1.f, 2.f, 5.f, 5.f};
  const float v[5] = {1.f, 2.f, 3.f, 10.f, 20.f};
  const int64_t cu[3] = {0, 3, 5};
  float out[5];
  ops::segment_attention(q, k, v, cu, 2, ops::AttentionShape{1, 1, 1}, 1.0f, out, Precision::F32);
  EXPECT_NEAR(out[0], 2.f, 1e-6);  // q = 0: uniform over the segment, rows after it included (not causal)
  for (int i = 1; i < 3; ++i) {
    double num = 0, den = 0;
    for (int j = 0; j < 3; ++j) {
      num += std::exp(double(q[i]) * k[j]) * v[j];
      den += std::exp(double(q[i]) * k[j]);
    }
    EXPECT_NEAR(out[i], num / den, 1e-5) << i;
  }
  EXPECT_NEAR(out[3], 15.f, 1e-5);  // equal keys: uniform over rows 3, 4 only
  EXPECT_NEAR(out[4], 15.f, 1e-5);
}

TEST(VisionOps, SegmentAttentionMatchesADoubleReferenceOnLongSegments) {
  // 2 heads of 4, segments of 37 and 5 rows (the softmax sum runs over 16 lanes, and in order below 16).
  const int64_t heads = 2, hd = 4, n = 42;
  const int64_t cu[3] = {0, 37, 42};
  std::vector<float> q(n * heads * hd), k(q.size()), v(q.size()), out(q.size());
  for (size_t i = 0; i < q.size(); ++i) {
    q[i] = std::sin(0.37f * i);
    k[i] = std::cos(0.11f * i + 1.f);
    v[i] = std::sin(0.05f * i * i);
  }
  const float scale = 0.5f;
  ops::segment_attention(q.data(), k.data(), v.data(), cu, 2, ops::AttentionShape{heads, heads, hd}, scale,
                         out.data(), Precision::F32);
  for (int64_t s = 0; s < 2; ++s)
    for (int64_t i = cu[s]; i < cu[s + 1]; ++i)
      for (int64_t h = 0; h < heads; ++h) {
        std::vector<double> w;
        double total = 0;
        for (int64_t j = cu[s]; j < cu[s + 1]; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < hd; ++d) dot += double(q[(i * heads + h) * hd + d]) * k[(j * heads + h) * hd + d];
          w.push_back(std::exp(dot * scale));
          total += w.back();
        }
        for (int64_t d = 0; d < hd; ++d) {
          double expected = 0;
          for (int64_t j = cu[s]; j < cu[s + 1]; ++j) expected += w[j - cu[s]] / total * v[(j * heads + h) * hd + d];
          EXPECT_NEAR(out[(i * heads + h) * hd + d], expected, 2e-6);
        }
      }
}

}  // namespace
}  // namespace qwen3vl
