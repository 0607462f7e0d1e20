// ops::linear_group (q/k/v, gate/up: several weights over the same x, x packed once, one hand-off) gives exactly
// the numbers of separate ops::linear calls: bf16 and quantized weights, with and without bias, decode and prefill
// row counts, one thread and a pool, on every optimized kernel set; weights of different formats fall back to one
// linear each.
#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "ops/quant.h"

namespace qwen3vl {
namespace {

struct Weight {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
};

Weight make_weight(DType format, int64_t rows, int64_t cols, uint32_t seed) {
  const std::vector<float> values = testing::rounded_to_bf16(testing::random_floats(rows * cols, seed, 0.05f));
  Weight out;
  if (is_quantized(format)) {
    out.bytes.resize(quant_matrix_bytes(format, rows, cols));
    quantize_rows(format, values.data(), rows, cols, 0, rows, out.bytes.data());
  } else {
    out.bytes = testing::store_as(format, values).bytes;
  }
  out.w = WeightMatrix{format, out.bytes.data(), rows, cols, WeightLayout::OutIn};
  return out;
}

TEST(LinearGroup, EqualsSeparateLinears) {
  ThreadPool pool(2);
  const int64_t cols = 96;
  const std::vector<float> bias_values = testing::rounded_to_bf16(testing::random_floats(300, 7, 0.1f));
  const testing::StoredWeights bias_bytes = testing::store_as(DType::BF16, bias_values);
  uint32_t seed = 1;
  for (const ops::cpu::Kernels* k : testing::optimized_kernel_sets())
    for (DType format : {DType::BF16, DType::Q8, DType::Q4})
      for (int64_t n : {1, 3, 40})
        for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
          SCOPED_TRACE(std::string(k->name) + " " + dtype_name(format) + " n=" + std::to_string(n) +
                       (p ? " pool" : ""));
          const ops::Context ctx{p, k};
          const std::vector<float> x = testing::rounded_to_bf16(testing::random_floats(n * cols, seed++));
          const Weight a = make_weight(format, 200, cols, seed++), b = make_weight(format, 70, cols, seed++),
                       c = make_weight(format, 33, cols, seed++);
          const WeightVector bias{DType::BF16, bias_bytes.data(), 70};
          std::vector<float> ya(n * 200, -1.f), yb(n * 70, -1.f), yc(n * 33, -1.f);
          const ops::LinearOutput outputs[] = {{&a.w, ya.data()}, {&b.w, yb.data(), &bias}, {&c.w, yc.data()}};
          ops::linear_group(ctx, x.data(), n, outputs, 3, Precision::BF16);
          std::vector<float> ea(ya.size()), eb(yb.size()), ec(yc.size());
          ops::linear(ctx, x.data(), n, a.w, ea.data(), Precision::BF16);
          ops::linear(ctx, x.data(), n, b.w, eb.data(), Precision::BF16, &bias);
          ops::linear(ctx, x.data(), n, c.w, ec.data(), Precision::BF16);
          EXPECT_EQ(ya, ea);
          EXPECT_EQ(yb, eb);
          EXPECT_EQ(yc, ec);
        }
}

TEST(LinearGroup, MixedFormatsFallBackToOneLinearEach) {
  ThreadPool pool(2);
  const ops::Context ctx{&pool, nullptr};
  const int64_t n = 5, cols = 64;
  const std::vector<float> x = testing::rounded_to_bf16(testing::random_floats(n * cols, 3));
  const Weight a = make_weight(DType::Q8, 48, cols, 4), b = make_weight(DType::BF16, 20, cols, 5);
  std::vector<float> ya(n * 48), yb(n * 20), ea(ya.size()), eb(yb.size());
  const ops::LinearOutput outputs[] = {{&a.w, ya.data()}, {&b.w, yb.data()}};
  ops::linear_group(ctx, x.data(), n, outputs, 2, Precision::BF16);
  ops::linear(ctx, x.data(), n, a.w, ea.data(), Precision::BF16);
  ops::linear(ctx, x.data(), n, b.w, eb.data(), Precision::BF16);
  EXPECT_EQ(ya, ea);
  EXPECT_EQ(yb, eb);
}

}  // namespace
}  // namespace qwen3vl
