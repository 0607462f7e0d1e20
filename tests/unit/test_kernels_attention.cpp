// causal_attention (decoder, GQA over a KV cache) and segment_attention (vision tower) on every optimized kernel set
// against the scalar reference: decode (one row), short and long prefills over a past, head sizes that are and are
// not multiples of the vector width (16, 24, 72, 128), segments of 1 to 300 rows, one thread and a pool.
//
// Bounds. F32: q.k differs from the reference's dot product only by summation order (head_dim * 2^-24 relative to
// sum |q_d k_d|, ~1e-5 of a score of size ~10), which moves each softmax weight by that relative amount; the output,
// a convex combination of value rows, then moves by at most ~1e-5 * max|v|. We allow 1e-4 * max|v|.
// BF16: scores and weights are rounded to bf16, so an order difference can flip one rounding of a score (one bf16
// ulp: 2^-8 relative, a weight change of |score| * 2^-8 ~ 4% of that weight) or of a weight (2^-8); the output then
// moves by a few percent of one weight times max|v|, and the final rounding adds one ulp. We allow
// 2^-5 * max|v| + one ulp, and require bf16 values. A wrong head, a leaking mask or a wrong segment gives errors of
// order max|v|.
#include <gtest/gtest.h>

#include <algorithm>

#include "kernel_test_util.h"

namespace qwen3vl {
namespace {

void compare(const std::vector<float>& expected, const std::vector<float>& got, float v_max, Precision precision) {
  int failures = 0;
  for (size_t i = 0; i < expected.size() && failures < 5; ++i) {
    float bound = 1e-4f * v_max;
    if (precision == Precision::BF16) {
      bound = 0x1p-5f * v_max + testing::bf16_ulp(std::max(std::fabs(expected[i]), std::fabs(got[i])));
      if (!testing::is_bf16_value(got[i])) {
        ADD_FAILURE() << "out[" << i << "] = " << got[i] << " is not a bf16 value";
        ++failures;
      }
    }
    if (!(std::fabs(got[i] - expected[i]) <= bound)) {
      ADD_FAILURE() << "out[" << i << "]: got " << got[i] << ", reference " << expected[i] << ", bound " << bound;
      ++failures;
    }
  }
}

std::vector<float> inputs(size_t count, uint32_t seed, float scale, Precision precision) {
  std::vector<float> v = testing::random_floats(count, seed, scale);
  return precision == Precision::BF16 ? testing::rounded_to_bf16(v) : v;
}

float max_abs(const std::vector<float>& v) {
  float m = 0.f;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

struct CausalCase {
  int64_t n, past, heads, kv_heads, head_dim;
};

TEST(KernelsAttention, CausalMatchesTheReference) {
  const std::vector<CausalCase> cases = {{1, 0, 2, 1, 16},    {1, 37, 4, 2, 24},   {1, 200, 16, 8, 128},
                                         {2, 5, 4, 4, 72},    {5, 0, 4, 2, 16},    {40, 3, 2, 1, 24},
                                         {64, 0, 4, 2, 128},  {100, 17, 4, 1, 72}, {300, 0, 2, 1, 64},
                                         {33, 250, 2, 2, 16}};
  ThreadPool pool(2);
  uint32_t seed = 1;
  for (const ops::cpu::Kernels* k : testing::optimized_kernel_sets())
    for (const CausalCase& c : cases)
      for (Precision precision : {Precision::F32, Precision::BF16})
        for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
          SCOPED_TRACE(std::string(k->name) + " n=" + std::to_string(c.n) + " past=" + std::to_string(c.past) +
                       " heads=" + std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) +
                       " head_dim=" + std::to_string(c.head_dim) + (precision == Precision::BF16 ? " BF16" : " F32") +
                       (p ? " pool" : ""));
          const int64_t rows = c.past + c.n;
          // Scores of size ~ several units, as after q/k RMSNorm.
          const auto q = inputs(c.n * c.heads * c.head_dim, seed++, 1.0f, precision);
          const auto kc = inputs(rows * c.kv_heads * c.head_dim, seed++, 1.0f, precision);
          const auto vc = inputs(rows * c.kv_heads * c.head_dim, seed++, 1.0f, precision);
          const ops::AttentionShape shape{c.heads, c.kv_heads, c.head_dim};
          const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
          std::vector<float> expected(c.n * c.heads * c.head_dim), got(expected.size(), -777.f);
          ops::reference::causal_attention(q.data(), c.n, c.past, kc.data(), vc.data(), shape, scale,
                                           expected.data(), precision);
          ops::causal_attention(ops::Context{p, k}, q.data(), c.n, c.past, kc.data(), vc.data(), shape, scale,
                                got.data(), precision);
          compare(expected, got, max_abs(vc), precision);
        }
}

std::vector<uint16_t> as_bf16_bits(const std::vector<float>& v) {
  std::vector<uint16_t> bits(v.size());
  for (size_t i = 0; i < v.size(); ++i) bits[i] = f32_to_bf16(v[i]);
  return bits;
}

// A BF16 cache (a bf16 model's) holds the same bf16 values as a float one: every path (direct decode rows, blocked
// prefill, the reference) gives bit-identical results from either, and the kernels match the reference.
TEST(KernelsAttention, Bf16CacheEqualsTheFloatCacheOfTheSameValues) {
  const std::vector<CausalCase> cases = {{1, 0, 2, 1, 16}, {1, 200, 16, 8, 128}, {3, 37, 4, 2, 24},
                                         {64, 0, 4, 2, 128}, {100, 17, 4, 1, 72}, {33, 250, 2, 2, 16}};
  ThreadPool pool(2);
  uint32_t seed = 900;
  for (const CausalCase& c : cases) {
    const int64_t rows = c.past + c.n;
    const auto q = inputs(c.n * c.heads * c.head_dim, seed++, 1.0f, Precision::BF16);
    const auto kc = inputs(rows * c.kv_heads * c.head_dim, seed++, 1.0f, Precision::BF16);
    const auto vc = inputs(rows * c.kv_heads * c.head_dim, seed++, 1.0f, Precision::BF16);
    const std::vector<uint16_t> kb = as_bf16_bits(kc), vb = as_bf16_bits(vc);
    const ops::AttentionShape shape{c.heads, c.kv_heads, c.head_dim};
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    const size_t out_size = static_cast<size_t>(c.n * c.heads * c.head_dim);
    std::vector<float> reference_f32(out_size), reference_bf16(out_size, -777.f);
    ops::reference::causal_attention(q.data(), c.n, c.past, kc.data(), vc.data(), shape, scale,
                                     reference_f32.data(), Precision::BF16);
    ops::reference::causal_attention(q.data(), c.n, c.past, kb.data(), vb.data(), shape, scale,
                                     reference_bf16.data(), Precision::BF16, DType::BF16);
    EXPECT_EQ(reference_bf16, reference_f32) << "reference, n=" << c.n << " past=" << c.past;
    for (const ops::cpu::Kernels* k : testing::optimized_kernel_sets())
      for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
        SCOPED_TRACE(std::string(k->name) + " n=" + std::to_string(c.n) + " past=" + std::to_string(c.past) +
                     " head_dim=" + std::to_string(c.head_dim) + (p ? " pool" : ""));
        std::vector<float> from_f32(out_size, -777.f), from_bf16(out_size, -555.f);
        ops::causal_attention(ops::Context{p, k}, q.data(), c.n, c.past, kc.data(), vc.data(), shape, scale,
                              from_f32.data(), Precision::BF16);
        ops::causal_attention(ops::Context{p, k}, q.data(), c.n, c.past, kb.data(), vb.data(), shape, scale,
                              from_bf16.data(), Precision::BF16, DType::BF16);
        EXPECT_EQ(from_bf16, from_f32);
        compare(reference_bf16, from_bf16, max_abs(vc), Precision::BF16);
      }
  }
}

TEST(KernelsAttention, SegmentsMatchTheReference) {
  const std::vector<std::vector<int64_t>> segmentations = {{0, 1}, {0, 7, 8, 60}, {0, 300}, {0, 64, 128, 192},
                                                           {0, 5, 305}};
  ThreadPool pool(2);
  uint32_t seed = 500;
  for (const ops::cpu::Kernels* k : testing::optimized_kernel_sets())
    for (const auto& cu : segmentations)
      for (int64_t head_dim : {16, 24, 64, 72})
        for (Precision precision : {Precision::F32, Precision::BF16})
          for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
            SCOPED_TRACE(std::string(k->name) + " rows=" + std::to_string(cu.back()) + " segments=" +
                         std::to_string(cu.size() - 1) + " head_dim=" + std::to_string(head_dim) +
                         (precision == Precision::BF16 ? " BF16" : " F32") + (p ? " pool" : ""));
            const int64_t n = cu.back(), heads = 3;
            const auto q = inputs(n * heads * head_dim, seed++, 1.0f, precision);
            const auto kr = inputs(n * heads * head_dim, seed++, 1.0f, precision);
            const auto vr = inputs(n * heads * head_dim, seed++, 1.0f, precision);
            const ops::AttentionShape shape{heads, heads, head_dim};
            const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
            std::vector<float> expected(n * heads * head_dim), got(expected.size(), -777.f);
            ops::reference::segment_attention(q.data(), kr.data(), vr.data(), cu.data(),
                                              static_cast<int64_t>(cu.size()) - 1, shape, scale, expected.data(),
                                              precision);
            ops::segment_attention(ops::Context{p, k}, q.data(), kr.data(), vr.data(), cu.data(),
                                   static_cast<int64_t>(cu.size()) - 1, shape, scale, got.data(), precision);
            compare(expected, got, max_abs(vr), precision);
          }
}

// With the keys orthogonal enough that scores are exact in float and bf16 (small integers), the softmax and the
// weighted sum are the only computation left: they follow torch's order, so the kernels equal the reference
// bit for bit in F32 as well.
TEST(KernelsAttention, SoftmaxIsTorchsBitForBit) {
  for (const ops::cpu::Kernels* k : testing::optimized_kernel_sets()) {
    SCOPED_TRACE(k->name);
    const int64_t n = 1, past = 40, head_dim = 16;
    std::vector<float> q(head_dim, 0.f), kc((past + n) * head_dim, 0.f), vc((past + n) * head_dim, 0.f);
    q[0] = 1.f;
    for (int64_t j = 0; j < past + n; ++j) {
      kc[j * head_dim] = static_cast<float>((j * 7) % 11) - 5.f;  // integer scores
      vc[j * head_dim + (j % head_dim)] = 1.f;                    // out[d] = sum of the weights of keys j = d mod 16
    }
    std::vector<float> expected(head_dim), got(head_dim);
    const ops::AttentionShape shape{1, 1, head_dim};
    ops::reference::causal_attention(q.data(), n, past, kc.data(), vc.data(), shape, 1.0f, expected.data(),
                                     Precision::F32);
    ops::causal_attention(ops::Context{nullptr, k}, q.data(), n, past, kc.data(), vc.data(), shape, 1.0f, got.data(),
                          Precision::F32);
    // The weighted sums add a few weights per output: allow their float rounding, nothing more.
    for (int64_t d = 0; d < head_dim; ++d) EXPECT_NEAR(got[d], expected[d], 4e-7f * std::fabs(expected[d]) + 1e-9f);
  }
}

}  // namespace
}  // namespace qwen3vl
