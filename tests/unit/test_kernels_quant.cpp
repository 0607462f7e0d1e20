// Block-quantized weights (ops/quant.h): the formats round-trip within half a quantization step, and ops::linear on
// every optimized kernel set matches the scalar reference on odd shapes on both sides of the GEMV/GEMM switch, Q8
// and Q4, with and without bias, both precisions, one thread and a pool.
//
// Bounds. x is quantized identically on both sides (same float operations), so every block's integer dot product is
// exact on both; they differ only in the order of the float sum of the scaled block (or lane) partial sums. Each
// side is within (terms + 2) * 2^-24 * M of the exact sum, M = sum over blocks of |w_scale x_scale| * sum_k
// |x_code| (|w_code| + 128) (the kernels' lanes may carry an offset of up to 128 per code before cancellation), so
// they differ by at most twice that; in BF16 plus one bf16 ulp. A wrong code, scale or block gives errors the size
// of whole terms.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "kernel_test_util.h"
#include "ops/quant.h"

namespace qwen3vl {
namespace {

struct Case {
  int64_t n, k, rows;
};

struct Quantized {
  std::vector<uint8_t> blob;
  WeightMatrix w;
};

Quantized quantize(DType format, const std::vector<float>& values, int64_t rows, int64_t cols) {
  Quantized q;
  q.blob.assign(quant_matrix_bytes(format, rows, cols), 0xcd);
  quantize_rows(format, values.data(), rows, cols, 0, rows, q.blob.data());
  q.w = WeightMatrix{format, q.blob.data(), rows, cols, WeightLayout::OutIn};
  return q;
}

void check(const ops::cpu::Kernels& kernels, ThreadPool* pool, const Case& c, DType format, bool with_bias,
           Precision precision, uint32_t seed) {
  SCOPED_TRACE(std::string(kernels.name) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
               " rows=" + std::to_string(c.rows) + " " + dtype_name(format) + (with_bias ? " bias" : "") +
               (precision == Precision::BF16 ? " BF16" : " F32") +
               (pool ? " threads=" + std::to_string(pool->size()) : ""));
  std::vector<float> x = testing::random_floats(static_cast<size_t>(c.n * c.k), seed);
  if (precision == Precision::BF16) x = testing::rounded_to_bf16(x);
  if (c.k > 3) x[2] = 40.0f;  // an outlier channel, as real activations have
  const std::vector<float> values = testing::random_floats(static_cast<size_t>(c.rows * c.k), seed + 1,
                                                           1.0f / std::sqrt(static_cast<float>(c.k)));
  const Quantized q = quantize(format, values, c.rows, c.k);
  const std::vector<float> bias_values = testing::rounded_to_bf16(testing::random_floats(c.rows, seed + 2, 0.1f));
  const testing::StoredWeights sb = testing::store_as(DType::BF16, bias_values);
  const WeightVector bias{DType::BF16, sb.data(), c.rows};

  std::vector<float> expected(static_cast<size_t>(c.n * c.rows)), got(expected.size(), -777.f);
  ops::reference::linear(x.data(), c.n, q.w, expected.data(), precision, with_bias ? &bias : nullptr);
  ops::linear(ops::Context{pool, &kernels}, x.data(), c.n, q.w, got.data(), precision, with_bias ? &bias : nullptr);

  const int64_t blocks = quant_blocks(c.k);
  int failures = 0;
  for (int64_t i = 0; i < c.n && failures < 5; ++i) {
    std::vector<int8_t> xq(static_cast<size_t>(blocks * kQuantBlock));
    std::vector<float> xs(static_cast<size_t>(blocks));
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t k0 = b * kQuantBlock;
      const int count = static_cast<int>(std::clamp<int64_t>(c.k - k0, 0, kQuantBlock));
      xs[b] = quantize_x_block(x.data() + i * c.k + std::min(k0, c.k), count, xq.data() + k0);
    }
    for (int64_t j = 0; j < c.rows && failures < 5; ++j) {
      double magnitude = with_bias ? std::fabs(bias_values[j]) : 0.0;
      for (int64_t b = 0; b < blocks; ++b) {
        double sum = 0;
        for (int64_t k = b * kQuantBlock; k < std::min(c.k, (b + 1) * kQuantBlock); ++k)
          sum += std::abs(xq[k]) * (std::abs(quant_code(q.w, j, k)) + 128.0);
        magnitude += std::fabs(quant_scale(q.w, j, b) * xs[b]) * sum;
      }
      const double bound = 2.0 * (c.k / 4.0 + blocks + 4) * std::ldexp(1.0, -24) * magnitude + 1e-30;
      failures += testing::check_linear_output(i, j, expected[i * c.rows + j], got[i * c.rows + j], bound,
                                               precision);
    }
  }
}

TEST(KernelsQuant, FormatsRoundTripWithinHalfAStep) {
  const int64_t rows = 7, cols = 100;  // 100: a partial block and a padded group
  const std::vector<float> values = testing::random_floats(rows * cols, 3);
  for (DType format : {DType::Q8, DType::Q4}) {
    SCOPED_TRACE(dtype_name(format));
    const Quantized q = quantize(format, values, rows, cols);
    // One tile of 16 rows, two groups of 64 cols: 8.5 / 4.5 bits per stored weight.
    EXPECT_EQ(q.blob.size(), static_cast<size_t>(16 * 128 * (format == DType::Q8 ? 8.5 : 4.5) / 8));
    std::vector<float> row(cols);
    double error = 0, energy = 0;
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(q.w, r, row.data());
      for (int64_t k = 0; k < cols; ++k) {
        const float scale = quant_scale(q.w, r, k / kQuantBlock);
        const int code = quant_code(q.w, r, k);
        EXPECT_LE(code, format == DType::Q8 ? 127 : 7);
        EXPECT_GE(code, format == DType::Q8 ? -127 : -8);
        // Inside the range every weight is within half a step of its code (Q4 may clip the extreme at +8 steps).
        if (format == DType::Q8 || std::fabs(values[r * cols + k]) < 7 * scale) {
          EXPECT_LE(std::fabs(row[k] - values[r * cols + k]), 0.5f * scale * 1.001f) << r << "," << k;
        }
        error += (row[k] - values[r * cols + k]) * (row[k] - values[r * cols + k]);
        energy += values[r * cols + k] * values[r * cols + k];
      }
      for (int64_t k = cols; k < quant_padded_cols(cols); ++k) EXPECT_EQ(quant_code(q.w, r, k), 0);
    }
    for (int64_t r = rows; r < 16; ++r)  // the tile's padding rows: zero codes, zero scales
      for (int64_t k = 0; k < quant_padded_cols(cols); ++k) {
        EXPECT_EQ(quant_code(q.w, r, k), 0);
        EXPECT_EQ(quant_scale(q.w, r, k / kQuantBlock), 0.f);
      }
    // Relative RMS error of normal weights: ~0.5% at 8 bits, ~10% at 4 bits.
    EXPECT_LT(std::sqrt(error / energy), format == DType::Q8 ? 0.01 : 0.13);
  }
}

// The byte positions ops/quant.h documents: unit (tile, group) of 16 rows x 64 cols, codes in 64-byte vectors with
// one 32-bit word per row, then the 32 fp16 scales (block 0 rows 0..15, block 1 rows 0..15).
TEST(KernelsQuant, LayoutPlacesEachWeightWhereTheFormatSays) {
  const int64_t rows = 20, cols = 128;
  const std::vector<float> values = testing::random_floats(rows * cols, 5);
  for (DType format : {DType::Q8, DType::Q4}) {
    SCOPED_TRACE(dtype_name(format));
    const Quantized q = quantize(format, values, rows, cols);
    const int64_t unit_bytes = format == DType::Q8 ? 1088 : 576, code_bytes = unit_bytes - 64;
    for (int64_t r : {0, 5, 15, 16, 19})
      for (int64_t k : {0, 3, 4, 31, 32, 33, 63, 64, 100, 127}) {
        const uint8_t* unit = q.blob.data() + (r / 16 * 2 + k / 64) * unit_bytes;
        const int64_t i = r % 16, c = k % 64;
        if (format == DType::Q8) {
          EXPECT_EQ(static_cast<int8_t>(unit[c / 4 * 64 + i * 4 + c % 4]), quant_code(q.w, r, k)) << r << "," << k;
        } else {
          const uint8_t byte = unit[(c % 32) / 4 * 64 + i * 4 + c % 4];
          EXPECT_EQ((c < 32 ? byte & 0xf : byte >> 4) - 8, quant_code(q.w, r, k)) << r << "," << k;
        }
        uint16_t scale_bits;
        std::memcpy(&scale_bits, unit + code_bytes + 2 * (c / 32 * 16 + i), 2);
        EXPECT_EQ(f16_to_f32(scale_bits), quant_scale(q.w, r, k / 32)) << r << "," << k;
        EXPECT_NE(quant_scale(q.w, r, k / 32), 0.f);  // a real block (Q4 scales may be negative)
      }
  }
}

TEST(KernelsQuant, LinearMatchesTheReferenceOnOddShapes) {
  const std::vector<Case> cases = {{1, 1, 1},   {1, 31, 5},   {1, 64, 9},    {2, 100, 17},  {3, 257, 33},
                                   {1, 2048, 70}, {4, 33, 65}, {7, 64, 31},  {13, 130, 40}, {37, 96, 70},
                                   {50, 31, 100}, {26, 320, 64}};
  uint32_t seed = 1;
  for (const ops::cpu::Kernels* k : testing::optimized_kernel_sets())
    for (const Case& c : cases)
      for (DType format : {DType::Q8, DType::Q4})
        for (bool bias : {false, true})
          for (Precision precision : {Precision::F32, Precision::BF16})
            check(*k, nullptr, c, format, bias, precision, seed++);
}

TEST(KernelsQuant, ThreadedSplitsMatchTheReference) {
  ThreadPool two(2), three(3);
  const std::vector<Case> cases = {{1, 96, 300}, {3, 64, 257}, {20, 128, 200}, {61, 192, 129}};
  uint32_t seed = 500;
  for (const ops::cpu::Kernels* k : testing::optimized_kernel_sets())
    for (ThreadPool* pool : {&two, &three})
      for (const Case& c : cases)
        for (DType format : {DType::Q8, DType::Q4}) check(*k, pool, c, format, true, Precision::BF16, seed++);
}

}  // namespace
}  // namespace qwen3vl
