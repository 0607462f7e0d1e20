// LoRA terms in ops::linear (ops.h, LoraTerm). The reference is checked against PEFT's arithmetic written out here
// (peft/tuners/lora/layer.py Linear.forward and dora.py DoraLinearLayer.forward): the base result rounded to the
// activation dtype, then each term added in float, then one rounding. The kernels are checked against the reference
// for every base weight format (f32, f16, bf16, q8, q4), both precisions, alone and in a linear_group, one thread
// and a pool.
//
// Bounds (kernels vs reference): the base product differs by the kernel tests' summation-order bound (K * 2^-24 *
// sum |x w|, doubled); each LoRA product adds the same bound over its r and in products, all in float; BF16 adds one
// bf16 ulp of the final rounding. Misplaced terms or scales give errors of the size of the terms.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/quant_layout.h"
#include "kernel_test_util.h"
#include "ops/quant.h"

namespace qwen3vl {
namespace {

using testing::StoredWeights;

constexpr double kEps = 5.9604644775390625e-08;  // 2^-24

struct Lora {
  std::vector<float> a, b;  // [r, in], [out, r]
  std::vector<float> dora;  // [out] or empty
  float scaling;
  LoraTerm term(int64_t in, int64_t out) const {
    const int64_t r = static_cast<int64_t>(a.size()) / in;
    LoraTerm t;
    t.lora_A = {DType::F32, a.data(), r, in};
    t.lora_B = {DType::F32, b.data(), out, r};
    t.scaling = scaling;
    t.dora_scale = dora.empty() ? nullptr : dora.data();
    return t;
  }
};

Lora make_lora(int64_t in, int64_t out, int64_t r, float scaling, bool dora, uint32_t seed) {
  Lora l;
  l.a = testing::random_floats(static_cast<size_t>(r * in), seed, 1.0f / std::sqrt(static_cast<float>(in)));
  l.b = testing::random_floats(static_cast<size_t>(out * r), seed + 1, 0.5f / std::sqrt(static_cast<float>(r)));
  if (dora) {
    l.dora = testing::random_floats(static_cast<size_t>(out), seed + 2, 0.1f);
    for (float& f : l.dora) f += 1.0f;
  }
  l.scaling = scaling;
  return l;
}

// A weight in `dtype` (quantized formats through ops/quant.h) with its values as float.
struct Weight {
  StoredWeights stored;
  WeightMatrix matrix;
};

Weight make_weight(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  std::vector<float> values =
      testing::random_floats(static_cast<size_t>(rows * cols), seed, 1.0f / std::sqrt(static_cast<float>(cols)));
  Weight w;
  if (dtype == DType::Q8 || dtype == DType::Q4) {
    w.stored.dtype = dtype;
    w.stored.bytes.resize(quant_matrix_bytes(dtype, rows, cols));
    quantize_rows(dtype, values.data(), rows, cols, 0, rows, w.stored.bytes.data());
  } else {
    w.stored = testing::store_as(dtype, values);
  }
  w.matrix = {dtype, w.stored.data(), rows, cols};
  return w;
}

TEST(KernelsLora, ReferenceFollowsPeftArithmetic) {
  const int64_t n = 3, in = 40, out = 24;
  const std::vector<float> x = testing::rounded_to_bf16(testing::random_floats(n * in, 1));
  const Weight w = make_weight(DType::BF16, out, in, 2);
  const std::vector<float> bias_values = testing::rounded_to_bf16(testing::random_floats(out, 3, 0.1f));
  const StoredWeights sb = testing::store_as(DType::BF16, bias_values);
  const WeightVector bias{DType::BF16, sb.data(), out};
  const Lora plain = make_lora(in, out, 4, 2.0f, false, 10);
  const Lora dora = make_lora(in, out, 3, 0.5f, true, 20);
  for (Precision precision : {Precision::F32, Precision::BF16}) {
    SCOPED_TRACE(precision == Precision::BF16 ? "BF16" : "F32");
    // result = base_layer(x), rounded
    std::vector<float> expected(n * out);
    ops::reference::linear(x.data(), n, w.matrix, expected.data(), precision, &bias);
    // each term in float, in order: plain, then DoRA on the running result
    for (int term = 0; term < 2; ++term) {
      const Lora& l = term == 0 ? plain : dora;
      const int64_t r = static_cast<int64_t>(l.a.size()) / in;
      for (int64_t i = 0; i < n; ++i) {
        std::vector<float> h(r);
        for (int64_t k = 0; k < r; ++k) {
          float acc = 0.f;
          for (int64_t c = 0; c < in; ++c) acc += x[i * in + c] * l.a[k * in + c];
          h[k] = acc;
        }
        for (int64_t j = 0; j < out; ++j) {
          float t = 0.f;
          for (int64_t k = 0; k < r; ++k) t += h[k] * l.b[j * r + k];
          float& y = expected[i * out + j];
          if (l.dora.empty()) {
            y = y + t * l.scaling;
          } else {
            const float f = l.dora[j];
            const float base_result = y - bias_values[j];  // y is no longer in the base dtype: no rounding
            y = y + ((f - 1.0f) * base_result + f * t * l.scaling);
          }
        }
      }
    }
    for (float& v : expected) v = round_to(precision, v);

    const LoraTerm terms[] = {plain.term(in, out), dora.term(in, out)};
    WeightMatrix adapted = w.matrix;
    adapted.lora = {terms, 2};
    std::vector<float> got(n * out);
    ops::reference::linear(x.data(), n, adapted, got.data(), precision, &bias);
    for (size_t e = 0; e < got.size(); ++e) {
      // the reference sums the same products in the same order: equal up to float summation order only
      EXPECT_NEAR(got[e], expected[e], 1e-5 * (1 + std::fabs(expected[e]))) << e;
      if (precision == Precision::BF16) {
        EXPECT_TRUE(testing::is_bf16_value(got[e])) << e;
      }
    }
  }
}

TEST(KernelsLora, ScaleZeroLeavesTheBaseBitForBit) {
  const int64_t n = 2, in = 64, out = 48;
  const std::vector<float> x = testing::random_floats(n * in, 4);
  for (DType dtype : {DType::F32, DType::BF16, DType::Q4}) {
    const Weight w = make_weight(dtype, out, in, 5);
    const Lora l = make_lora(in, out, 8, 0.0f, false, 30);
    const LoraTerm term = l.term(in, out);
    WeightMatrix adapted = w.matrix;
    adapted.lora = {&term, 1};
    std::vector<float> base(n * out), with(n * out);
    ops::linear(x.data(), n, w.matrix, base.data(), Precision::BF16);
    ops::linear(x.data(), n, adapted, with.data(), Precision::BF16);
    EXPECT_EQ(base, with) << dtype_name(dtype);
  }
}

void check_against_reference(const ops::cpu::Kernels& kernels, ThreadPool* pool, DType dtype, Precision precision,
                             int64_t n, bool dora) {
  const int64_t in = 96, out = 72, r = 16;
  SCOPED_TRACE(std::string(kernels.name) + " " + dtype_name(dtype) + (precision == Precision::BF16 ? " BF16" : " F32") +
               " n=" + std::to_string(n) + (dora ? " DoRA" : "") + (pool ? " pool" : ""));
  const std::vector<float> x = testing::random_floats(n * in, 6);
  const Weight w = make_weight(dtype, out, in, 7);
  const std::vector<float> bias_values = testing::random_floats(out, 8, 0.1f);
  const WeightVector bias{DType::F32, bias_values.data(), out};
  const Lora first = make_lora(in, out, r, 1.5f, dora, 40), second = make_lora(in, out, 4, -0.75f, false, 50);
  const LoraTerm terms[] = {first.term(in, out), second.term(in, out)};
  WeightMatrix adapted = w.matrix;
  adapted.lora = {terms, 2};

  std::vector<float> expected(n * out), got(n * out, -777.f), grouped(n * out, -777.f), other(n * out);
  ops::reference::linear(x.data(), n, adapted, expected.data(), precision, &bias);
  const ops::Context ctx{pool, &kernels};
  ops::linear(ctx, x.data(), n, adapted, got.data(), precision, &bias);
  // in a group beside an output without LoRA: the same numbers as alone
  const ops::LinearOutput outputs[] = {{&w.matrix, other.data(), nullptr}, {&adapted, grouped.data(), &bias}};
  ops::linear_group(ctx, x.data(), n, outputs, 2, precision);
  EXPECT_EQ(got, grouped);

  // Bound: the base product's summation-order bound (quantized bases: the kernels reproduce the reference's
  // integer dot products, so only the block sums' order), plus each term's products, scaled by |f|, |s|.
  std::vector<float> base(n * out);
  ops::reference::linear(x.data(), n, w.matrix, base.data(), precision, &bias);
  std::vector<float> w_values(out * in);
  for (int64_t j = 0; j < out; ++j) {
    if (dtype == DType::Q8 || dtype == DType::Q4)
      dequantize_row(w.matrix, j, w_values.data() + j * in);
    else
      convert_to_f32(dtype, w.stored.bytes.data() + j * in * dtype_size(dtype), w_values.data() + j * in, in);
  }
  int failures = 0;
  for (int64_t i = 0; i < n && failures < 5; ++i)
    for (int64_t j = 0; j < out && failures < 5; ++j) {
      double magnitude = std::fabs(bias_values[j]);
      for (int64_t c = 0; c < in; ++c) magnitude += std::fabs(x[i * in + c] * w_values[j * in + c]);
      for (const Lora* l : {&first, &second}) {
        const int64_t rank = static_cast<int64_t>(l->a.size()) / in;
        double term = 0.0;
        for (int64_t k = 0; k < rank; ++k) {
          double h = 0.0;
          for (int64_t c = 0; c < in; ++c) h += std::fabs(x[i * in + c] * l->a[k * in + c]);
          term += h * std::fabs(l->b[j * rank + k]);
        }
        const double f = l->dora.empty() ? 1.0 : std::fabs(l->dora[j]);
        magnitude += term * std::fabs(l->scaling) * f;
      }
      double bound = 2.0 * (in + r + 2) * kEps * magnitude + 1e-30;
      // In BF16 the base result is rounded before the terms are added: a one-ulp difference there carries through.
      if (precision == Precision::BF16) bound += testing::bf16_ulp(base[i * out + j]) * (first.dora.empty() ? 1.0 : 1.5);
      failures += testing::check_linear_output(i, j, expected[i * out + j], got[i * out + j], bound, precision);
    }
}

TEST(KernelsLora, KernelsMatchTheReferenceForEveryBaseFormat) {
  ThreadPool pool(3);
  for (const ops::cpu::Kernels* kernels : testing::optimized_kernel_sets())
    for (DType dtype : {DType::F32, DType::F16, DType::BF16, DType::Q8, DType::Q4})
      for (Precision precision : {Precision::F32, Precision::BF16})
        for (int64_t n : {1, 5, 33}) {
          check_against_reference(*kernels, nullptr, dtype, precision, n, /*dora=*/false);
          check_against_reference(*kernels, &pool, dtype, precision, n, /*dora=*/n == 5);
        }
}

}  // namespace
}  // namespace qwen3vl
