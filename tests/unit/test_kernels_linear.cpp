// ops::linear on every optimized kernel set (AVX-512 with BF16, AVX2) against the scalar reference: odd sizes on
// both sides of the GEMV/GEMM switch, both weight layouts, with and without bias, f32/f16/bf16 weights, both
// precisions, bf16-exact inputs (the vdpbf16ps path) and inexact ones (the FMA path), one thread and a pool.
//
// Bounds. Both sides accumulate the same K products in float in different orders, so each is within
// K * 2^-24 * sum_k |x_k w_k| of the exact sum (plus the bias add) and they differ by at most twice that: the F32
// bound.
// In BF16 both results are then rounded to bf16 once, so they differ by at most that bound plus one bf16 ulp, and
// every result must be a bf16 value. A wrong index, a missed tail or a misplaced bias gives errors of the size of
// the terms themselves, orders of magnitude above these bounds.
#include <gtest/gtest.h>

#include <algorithm>

#include "kernel_test_util.h"

namespace qwen3vl {
namespace {

using testing::StoredWeights;

struct Case {
  int64_t n, k, rows;
};

void check_linear(const ops::cpu::Kernels& kernels, ThreadPool* pool, const Case& c, DType dtype,
                  WeightLayout layout, bool with_bias, Precision precision, bool bf16_inputs, uint32_t seed) {
  SCOPED_TRACE(std::string(kernels.name) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
               " rows=" + std::to_string(c.rows) + " " + dtype_name(dtype) +
               (layout == WeightLayout::InOut ? " InOut" : " OutIn") + (with_bias ? " bias" : "") +
               (precision == Precision::BF16 ? " BF16" : " F32") + (bf16_inputs ? " bf16-inputs" : "") +
               (pool ? " threads=" + std::to_string(pool->size()) : ""));
  std::vector<float> x = testing::random_floats(static_cast<size_t>(c.n * c.k), seed);
  if (bf16_inputs) x = testing::rounded_to_bf16(x);
  // Weight values in [out][in] order, exactly representable in dtype.
  std::vector<float> w_values = testing::random_floats(static_cast<size_t>(c.rows * c.k), seed + 1,
                                                       1.0f / std::sqrt(static_cast<float>(c.k)));
  for (float& v : w_values) {
    if (dtype == DType::F16) v = f16_to_f32(f32_to_f16(v));
    if (dtype == DType::BF16) v = round_to_bf16(v);
  }
  std::vector<float> stored(w_values.size());
  for (int64_t j = 0; j < c.rows; ++j)
    for (int64_t kk = 0; kk < c.k; ++kk)
      stored[layout == WeightLayout::OutIn ? j * c.k + kk : kk * c.rows + j] = w_values[j * c.k + kk];
  const StoredWeights sw = testing::store_as(dtype, stored);
  const WeightMatrix w{dtype, sw.data(), c.rows, c.k, layout};
  const std::vector<float> bias_values = testing::rounded_to_bf16(testing::random_floats(c.rows, seed + 2, 0.1f));
  const StoredWeights sb = testing::store_as(DType::BF16, bias_values);
  const WeightVector bias{DType::BF16, sb.data(), c.rows};

  std::vector<float> expected(static_cast<size_t>(c.n * c.rows)), got(expected.size(), -777.f);
  ops::reference::linear(x.data(), c.n, w, expected.data(), precision, with_bias ? &bias : nullptr);
  ops::linear(ops::Context{pool, &kernels}, x.data(), c.n, w, got.data(), precision, with_bias ? &bias : nullptr);

  int failures = 0;
  for (int64_t i = 0; i < c.n && failures < 5; ++i)
    for (int64_t j = 0; j < c.rows && failures < 5; ++j) {
      double magnitude = with_bias ? std::fabs(bias_values[j]) : 0.0;
      for (int64_t kk = 0; kk < c.k; ++kk) magnitude += std::fabs(x[i * c.k + kk] * w_values[j * c.k + kk]);
      const double f32_bound = 2.0 * (c.k + 1) * std::ldexp(1.0, -24) * magnitude + 1e-30;
      failures += testing::check_linear_output(i, j, expected[i * c.rows + j], got[i * c.rows + j], f32_bound,
                                               precision);
    }
}

TEST(KernelsLinear, MatchesTheReferenceOnOddShapes) {
  const std::vector<Case> cases = {{1, 1, 1},    {1, 7, 5},     {1, 31, 33},  {1, 64, 70},  {2, 100, 17},
                                   {3, 257, 9},  {4, 33, 65},   {5, 7, 31},   {13, 64, 40}, {13, 65, 33},
                                   {37, 100, 70}, {50, 31, 100}, {26, 256, 64}};
  uint32_t seed = 1;
  for (const ops::cpu::Kernels* k : testing::optimized_kernel_sets())
    for (const Case& c : cases)
      for (DType dtype : {DType::F32, DType::F16, DType::BF16})
        for (WeightLayout layout : {WeightLayout::OutIn, WeightLayout::InOut})
          for (bool bias : {false, true})
            for (Precision precision : {Precision::F32, Precision::BF16})
              for (bool bf16_inputs : {false, true})
                check_linear(*k, nullptr, c, dtype, layout, bias, precision, bf16_inputs, seed++);
}

TEST(KernelsLinear, ThreadedSplitsMatchTheReference) {
  ThreadPool two(2), three(3);
  const std::vector<Case> cases = {{1, 96, 300}, {3, 50, 257}, {20, 128, 200}, {61, 64, 129}};
  uint32_t seed = 1000;
  for (const ops::cpu::Kernels* k : testing::optimized_kernel_sets())
    for (ThreadPool* pool : {&two, &three})
      for (const Case& c : cases)
        for (DType dtype : {DType::F32, DType::BF16})
          for (WeightLayout layout : {WeightLayout::OutIn, WeightLayout::InOut})
            check_linear(*k, pool, c, dtype, layout, true, Precision::BF16, true, seed++);
}

TEST(KernelsLinear, Bf16DotPathIsUsedOnlyForBf16Values) {
  // One input that is not a bf16 value must send the call to the float path: the result then matches the
  // reference within the F32 bound even though every other input is a bf16 value.
  for (const ops::cpu::Kernels* k : testing::optimized_kernel_sets()) {
    SCOPED_TRACE(k->name);
    const int64_t n = 16, kk = 64, rows = 32;
    std::vector<float> x = testing::rounded_to_bf16(testing::random_floats(n * kk, 7));
    x[5] = 1.0f + 0x1p-9f;  // not a bf16 value (spacing 2^-7 at 1)
    const std::vector<float> wv = testing::rounded_to_bf16(testing::random_floats(rows * kk, 8));
    const auto sw = testing::store_as(DType::BF16, wv);
    const WeightMatrix w{DType::BF16, sw.data(), rows, kk, WeightLayout::OutIn};
    std::vector<float> expected(n * rows), got(n * rows);
    ops::reference::linear(x.data(), n, w, expected.data(), Precision::F32);
    ops::linear(ops::Context{nullptr, k}, x.data(), n, w, got.data(), Precision::F32);
    // Row 0 holds the inexact input; a bf16 dot product would have rounded it to 1.0.
    for (int64_t j = 0; j < rows; ++j) EXPECT_NEAR(got[j], expected[j], 1e-5f) << j;
  }
}

}  // namespace
}  // namespace qwen3vl
