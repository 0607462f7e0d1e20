// Norms, rotary and activations on every optimized kernel set against the scalar reference: odd lengths (vector
// tails), f32/f16/bf16 weights, both precisions, one thread and a pool.
//
// Bounds. add_inplace and apply_rotary do the reference's operations in its order: equal bit for bit. rms_norm and
// layer_norm sum the row in another order (float lanes; double for layer_norm's moments, as the reference), which
// moves the scale by ~dim * 2^-24: F32 within 1e-5 relative (+1e-6 absolute), BF16 within one bf16 ulp (rms_norm,
// which rounds twice: plus one ulp of the first rounding times |weight|). silu and
// the GELUs use a vectorized exp (Sleef expf_u10, the one torch uses) instead of libm, and GELU(erf) torch's
// Abramowitz-Stegun erf (|error| < 1.5e-7): F32 within 2e-6 * (1 + |x|), BF16 within one bf16 ulp (+ that).
#include <gtest/gtest.h>

#include <algorithm>

#include "kernel_test_util.h"

namespace qwen3vl {
namespace {

void expect_close(const std::vector<float>& expected, const std::vector<float>& got, Precision precision,
                  float rel, float abs, const std::vector<float>* x = nullptr,
                  const std::vector<float>* extra = nullptr) {
  int failures = 0;
  for (size_t i = 0; i < expected.size() && failures < 5; ++i) {
    float bound = rel * std::fabs(expected[i]) + abs * (x ? 1.f + std::fabs((*x)[i]) : 1.f);
    if (extra) bound += (*extra)[i];
    if (precision == Precision::BF16) {
      bound += testing::bf16_ulp(std::max(std::fabs(expected[i]), std::fabs(got[i])));
      if (!testing::is_bf16_value(got[i])) {
        ADD_FAILURE() << "[" << i << "] = " << got[i] << " is not a bf16 value";
        ++failures;
      }
    }
    if (!(std::fabs(got[i] - expected[i]) <= bound)) {
      ADD_FAILURE() << "[" << i << "]: got " << got[i] << ", reference " << expected[i] << ", bound " << bound;
      ++failures;
    }
  }
}

std::vector<float> data(size_t count, uint32_t seed, float scale, Precision precision) {
  auto v = testing::random_floats(count, seed, scale);
  return precision == Precision::BF16 ? testing::rounded_to_bf16(v) : v;
}

std::string label(const ops::cpu::Kernels* k, Precision p, const std::string& more) {
  return std::string(k->name) + (p == Precision::BF16 ? " BF16 " : " F32 ") + more;
}

TEST(KernelsElementwise, NormsMatchTheReference) {
  ThreadPool pool(2);
  uint32_t seed = 1;
  for (const ops::cpu::Kernels* k : testing::optimized_kernel_sets())
    for (Precision p : {Precision::F32, Precision::BF16})
      for (int64_t dim : {1, 7, 16, 33, 128, 1000})
        for (DType dtype : {DType::F32, DType::F16, DType::BF16})
          for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
            SCOPED_TRACE(label(k, p, "dim=" + std::to_string(dim) + " " + dtype_name(dtype)));
            const int64_t rows = 37;
            const auto x = data(rows * dim, seed++, 3.0f, p);
            auto gamma = testing::random_floats(dim, seed++, 1.0f);
            auto beta = testing::random_floats(dim, seed++, 0.5f);
            for (auto* v : {&gamma, &beta})
              for (float& g : *v) g = dtype == DType::F16 ? f16_to_f32(f32_to_f16(g)) : round_to_bf16(g);
            const auto sg = testing::store_as(dtype, gamma), sb = testing::store_as(dtype, beta);
            const WeightVector wg{dtype, sg.data(), dim}, wb{dtype, sb.data(), dim};
            std::vector<float> expected(rows * dim), got(rows * dim);
            ops::reference::rms_norm(x.data(), rows, dim, wg, 1e-6f, expected.data(), p);
            ops::rms_norm(ops::Context{tp, k}, x.data(), rows, dim, wg, 1e-6f, got.data(), p);
            // BF16 rms_norm rounds twice (x * rsqrt, then * weight): a flipped first rounding is one ulp of
            // x * rsqrt times |weight|.
            std::vector<float> first_rounding(rows * dim, 0.f);
            if (p == Precision::BF16)
              for (int64_t i = 0; i < rows * dim; ++i) {
                const float g = std::fabs(gamma[i % dim]);
                first_rounding[i] = g * testing::bf16_ulp(std::fabs(expected[i]) / std::max(g, 1e-6f));
              }
            expect_close(expected, got, p, 1e-5f, 1e-6f, nullptr, &first_rounding);
            ops::reference::layer_norm(x.data(), rows, dim, wg, wb, 1e-6f, expected.data(), p);
            ops::layer_norm(ops::Context{tp, k}, x.data(), rows, dim, wg, wb, 1e-6f, got.data(), p);
            expect_close(expected, got, p, 1e-5f, 1e-6f);
          }
}

TEST(KernelsElementwise, ActivationsMatchTheReference) {
  ThreadPool pool(2);
  uint32_t seed = 100;
  for (const ops::cpu::Kernels* k : testing::optimized_kernel_sets())
    for (Precision p : {Precision::F32, Precision::BF16})
      for (size_t count : {size_t{1}, size_t{15}, size_t{17}, size_t{1000}, size_t{70001}})
        for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
          SCOPED_TRACE(label(k, p, "count=" + std::to_string(count)));
          auto x = data(count, seed++, 4.0f, p);
          if (count > 4) {  // the far tails
            x[0] = -30.f;
            x[1] = 30.f;
            x[2] = -9.f;
            x[3] = 0.f;
          }
          const auto y = data(count, seed++, 2.0f, p);
          std::vector<float> expected(count), got(count);
          ops::reference::gelu_tanh(x.data(), count, expected.data(), p);
          ops::gelu_tanh(ops::Context{tp, k}, x.data(), count, got.data(), p);
          expect_close(expected, got, p, 0.f, 2e-6f, &x);
          ops::reference::gelu_erf(x.data(), count, expected.data(), p);
          ops::gelu_erf(ops::Context{tp, k}, x.data(), count, got.data(), p);
          expect_close(expected, got, p, 0.f, 2e-6f, &x);
          ops::reference::silu_mul(x.data(), y.data(), count, expected.data(), p);
          ops::silu_mul(ops::Context{tp, k}, x.data(), y.data(), count, got.data(), p);
          // silu is rounded before the product in BF16: a flip there is one ulp of silu times |up|.
          std::vector<float> scaled_abs(count);
          for (size_t i = 0; i < count; ++i) scaled_abs[i] = std::fabs(y[i]) * (1.f + std::fabs(x[i]));
          expect_close(expected, got, p, 1e-6f, p == Precision::BF16 ? 0x1p-7f : 2e-6f, &scaled_abs);
          expected = x;
          got = x;
          ops::reference::add_inplace(expected.data(), y.data(), count, p);
          ops::add_inplace(ops::Context{tp, k}, got.data(), y.data(), count, p);
          EXPECT_EQ(expected, got);
        }
}

TEST(KernelsElementwise, RotaryIsBitExact) {
  ThreadPool pool(2);
  uint32_t seed = 300;
  for (const ops::cpu::Kernels* k : testing::optimized_kernel_sets())
    for (Precision p : {Precision::F32, Precision::BF16})
      for (int64_t head_dim : {2, 16, 24, 64, 72, 128})
        for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
          SCOPED_TRACE(label(k, p, "head_dim=" + std::to_string(head_dim)));
          const int64_t rows = 29, heads = 3;
          const auto x = data(rows * heads * head_dim, seed++, 2.0f, p);
          std::vector<float> cos(rows * head_dim), sin(rows * head_dim);
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t d = 0; d < head_dim; ++d) {
              const float angle = static_cast<float>(r) * 0.37f * static_cast<float>(d % (head_dim / 2) + 1);
              cos[r * head_dim + d] = round_to(p, std::cos(angle));
              sin[r * head_dim + d] = round_to(p, std::sin(angle));
            }
          auto expected = x, got = x;
          ops::reference::apply_rotary(expected.data(), rows, heads, head_dim, cos.data(), sin.data(), p);
          ops::apply_rotary(ops::Context{tp, k}, got.data(), rows, heads, head_dim, cos.data(), sin.data(), p);
          EXPECT_EQ(expected, got);
        }
}

}  // namespace
}  // namespace qwen3vl
