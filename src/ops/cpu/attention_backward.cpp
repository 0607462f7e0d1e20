// ops::attention_backward on a Context (ops/backward.h). One task per (segment, query head) owns that head's dq rows
// and its share of dk / dv; it walks the segment's query rows in blocks of kBlockRows, recomputes the block's softmax
// from S = Q K^T, and forms dP = dO V^T, dQ = dS K, dK += dS^T Q and dV += P^T dO with the forward GEMM on its
// thread (memory O(kBlockRows x segment) per task). The query heads of a GQA group then add their dk / dv shares in
// head order, so every value is summed in the same order at any thread count.
#include <algorithm>
#include <cmath>

#include "ops/backward.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/parallel_ranges.h"

namespace qwen3vl {
namespace ops {
namespace {

constexpr int64_t kBlockRows = 64;

WeightMatrix f32_matrix(const float* data, int64_t rows, int64_t cols, WeightLayout layout) {
  WeightMatrix m;
  m.data = data;
  m.rows = rows;
  m.cols = cols;
  m.layout = layout;
  return m;
}

// dst[r, :] = src[r * stride, :head_dim] for r < rows (one head's rows made contiguous), and back.
void gather_rows(const float* src, int64_t stride, int64_t rows, int64_t head_dim, float* dst) {
  for (int64_t r = 0; r < rows; ++r) std::copy(src + r * stride, src + r * stride + head_dim, dst + r * head_dim);
}
void scatter_rows(const float* src, int64_t rows, int64_t head_dim, float* dst, int64_t stride) {
  for (int64_t r = 0; r < rows; ++r) std::copy(src + r * head_dim, src + (r + 1) * head_dim, dst + r * stride);
}

// One row of the block, the scalar set's (the vector sets have Kernels::softmax_backward_row): s holds the raw
// scores q.k and dp the products dO.v over `keys` keys. Leaves P in s and dS = P (dP - rowsum(P dP)) * scale in dp
// (the reference's formulas and float softmax), zero up to `width`.
void softmax_backward_row(float* s, float* dp, int64_t keys, int64_t width, float scale) {
  float max_value = -INFINITY;
  for (int64_t j = 0; j < keys; ++j) {
    s[j] *= scale;
    max_value = std::max(max_value, s[j]);
  }
  float sum = 0.f;
  for (int64_t j = 0; j < keys; ++j) {
    s[j] = std::exp(s[j] - max_value);
    sum += s[j];
  }
  const float inv_sum = 1.0f / sum;
  double row_sum = 0.0;
  for (int64_t j = 0; j < keys; ++j) {
    s[j] *= inv_sum;
    row_sum += static_cast<double>(s[j]) * dp[j];
  }
  for (int64_t j = 0; j < keys; ++j) dp[j] = static_cast<float>(s[j] * (dp[j] - row_sum)) * scale;
  std::fill(s + keys, s + width, 0.f);
  std::fill(dp + keys, dp + width, 0.f);
}

// dst[cols, rows] = src[rows, cols]^T (one head's block, a few KB).
void transpose(const float* src, int64_t rows, int64_t cols, float* dst) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
}

// The buffers, per thread (cpu::backward_scratch): the caller's GQA shares, then each task's.
enum Slot {
  kDkShare, kDvShare,  // the caller's
  kKeys, kValues, kDkT, kDvT, kQuery, kDout, kQueryT, kDoutT, kScores, kScoreGrads, kProduct  // each task's
};

struct HeadTask {
  const float* q;     // the segment's first row, this head
  const float* k;     // the segment's first row, this head's KV head
  const float* v;
  const float* dout;  // the segment's first row, this head
  float* dq;          // like q
  float* dk;          // dk / dv share of this head: [rows, head_dim] at row stride dkv_stride
  float* dv;
  int64_t rows;
  int64_t q_stride, kv_stride, dkv_stride, head_dim;
  bool causal;
  float scale;
  void (*softmax_backward_row)(float* s, float* dp, int64_t keys, int64_t width, float scale);
};

float* zeroed(float* buffer, int64_t count) {
  std::fill(buffer, buffer + count, 0.f);
  return buffer;
}

// dst[:, :width] += product [rows, width] for dst of row stride ld.
void add_columns(const float* product, int64_t rows, int64_t width, float* dst, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < width; ++j) dst[r * ld + j] += product[r * width + j];
}

// dK and dV are built transposed, dK^T [hd, L] += Q^T dS with dS read in place as an InOut weight [width rows, block
// cols]: no transpose of the [block, width] score matrices.
void head_backward(const Context& single, const HeadTask& t) {
  const int64_t L = t.rows, hd = t.head_dim;
  const size_t head_floats = static_cast<size_t>(L * hd);
  float* k = cpu::backward_scratch(kKeys, head_floats);
  float* v = cpu::backward_scratch(kValues, head_floats);
  float* dk_t = zeroed(cpu::backward_scratch(kDkT, head_floats), L * hd);
  float* dv_t = zeroed(cpu::backward_scratch(kDvT, head_floats), L * hd);
  gather_rows(t.k, t.kv_stride, L, hd, k);
  gather_rows(t.v, t.kv_stride, L, hd, v);
  const int64_t block = std::min(L, kBlockRows);
  const size_t block_floats = static_cast<size_t>(block * hd), score_floats = static_cast<size_t>(block * L);
  float* q = cpu::backward_scratch(kQuery, block_floats);
  float* dout = cpu::backward_scratch(kDout, block_floats);
  float* q_t = cpu::backward_scratch(kQueryT, block_floats);
  float* dout_t = cpu::backward_scratch(kDoutT, block_floats);
  float* s = cpu::backward_scratch(kScores, score_floats);
  float* dp = cpu::backward_scratch(kScoreGrads, score_floats);
  float* product = cpu::backward_scratch(kProduct, head_floats);  // [hd, width] of dK^T and dV^T
  for (int64_t b0 = 0; b0 < L; b0 += block) {
    const int64_t rows = std::min(block, L - b0);
    const int64_t width = t.causal ? b0 + rows : L;  // keys any row of the block sees
    gather_rows(t.q + b0 * t.q_stride, t.q_stride, rows, hd, q);
    gather_rows(t.dout + b0 * t.q_stride, t.q_stride, rows, hd, dout);
    linear(single, q, rows, f32_matrix(k, width, hd, WeightLayout::OutIn), s, Precision::F32);     // S [rows, width]
    linear(single, dout, rows, f32_matrix(v, width, hd, WeightLayout::OutIn), dp, Precision::F32);  // dP
    for (int64_t i = 0; i < rows; ++i)
      t.softmax_backward_row(s + i * width, dp + i * width, t.causal ? b0 + i + 1 : L, width, t.scale);
    transpose(q, rows, hd, q_t);
    transpose(dout, rows, hd, dout_t);
    // dQ = dS K: K read as an InOut weight [hd rows, width cols]; written over the gathered q (no longer needed).
    linear(single, dp, rows, f32_matrix(k, hd, width, WeightLayout::InOut), q, Precision::F32);
    scatter_rows(q, rows, hd, t.dq + b0 * t.q_stride, t.q_stride);
    linear(single, q_t, hd, f32_matrix(dp, width, rows, WeightLayout::InOut), product, Precision::F32);
    add_columns(product, hd, width, dk_t, L);
    linear(single, dout_t, hd, f32_matrix(s, width, rows, WeightLayout::InOut), product, Precision::F32);
    add_columns(product, hd, width, dv_t, L);
  }
  for (int64_t r = 0; r < L; ++r)
    for (int64_t d = 0; d < hd; ++d) {
      t.dk[r * t.dkv_stride + d] = dk_t[d * L + r];
      t.dv[r * t.dkv_stride + d] = dv_t[d * L + r];
    }
}

}  // namespace

void attention_backward(const Context& ctx, const float* q, const float* k, const float* v, int64_t n,
                        const int64_t* cu_seqlens, int64_t num_segments, bool causal, const AttentionShape& shape,
                        float scale, const float* dout, float* dq, float* dk, float* dv) {
  const int64_t hd = shape.head_dim, heads = shape.num_heads, kv_heads = shape.num_kv_heads;
  const int64_t group = heads / kv_heads;
  const int64_t q_stride = heads * hd, kv_stride = kv_heads * hd;
  std::fill(dq, dq + n * q_stride, 0.f);
  // Each query head's dk / dv share: written in place when the head has its KV head alone (no GQA), else laid out
  // like dq and added per group below.
  const size_t share_floats = group > 1 ? static_cast<size_t>(n * q_stride) : 0;
  float* dk_share = group > 1 ? zeroed(cpu::backward_scratch(kDkShare, share_floats), n * q_stride) : nullptr;
  float* dv_share = group > 1 ? zeroed(cpu::backward_scratch(kDvShare, share_floats), n * q_stride) : nullptr;
  if (group == 1) {
    std::fill(dk, dk + n * kv_stride, 0.f);
    std::fill(dv, dv + n * kv_stride, 0.f);
  }
  const Context single{nullptr, ctx.kernels};
  const cpu::Kernels& kernels = ctx.kernels ? *ctx.kernels : cpu::best_kernels();
  cpu::for_tasks(ctx, num_segments * heads, [&](int64_t task) {
    const int64_t s = task / heads, h = task % heads, kv = h / group;
    const int64_t begin = cu_seqlens[s], rows = cu_seqlens[s + 1] - begin;
    if (rows <= 0) return;
    HeadTask t;
    t.q = q + begin * q_stride + h * hd;
    t.k = k + begin * kv_stride + kv * hd;
    t.v = v + begin * kv_stride + kv * hd;
    t.dout = dout + begin * q_stride + h * hd;
    t.dq = dq + begin * q_stride + h * hd;
    t.dk = group > 1 ? dk_share + begin * q_stride + h * hd : dk + begin * kv_stride + kv * hd;
    t.dv = group > 1 ? dv_share + begin * q_stride + h * hd : dv + begin * kv_stride + kv * hd;
    t.rows = rows;
    t.q_stride = q_stride;
    t.kv_stride = kv_stride;
    t.dkv_stride = group > 1 ? q_stride : kv_stride;
    t.head_dim = hd;
    t.causal = causal;
    t.scale = scale;
    t.softmax_backward_row = kernels.softmax_backward_row ? kernels.softmax_backward_row : softmax_backward_row;
    head_backward(single, t);
  });
  if (group == 1) return;
  cpu::for_ranges(ctx, n, 1, std::max<int64_t>(1, cpu::kMinParallelElements / q_stride), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t kv = 0; kv < kv_heads; ++kv)
        for (int64_t d = 0; d < hd; ++d) {
          float sum_k = 0.f, sum_v = 0.f;
          for (int64_t g = 0; g < group; ++g) {
            sum_k += dk_share[r * q_stride + (kv * group + g) * hd + d];
            sum_v += dv_share[r * q_stride + (kv * group + g) * hd + d];
          }
          dk[r * kv_stride + kv * hd + d] = sum_k;
          dv[r * kv_stride + kv * hd + d] = sum_v;
        }
  });
}

}  // namespace ops
}  // namespace qwen3vl
