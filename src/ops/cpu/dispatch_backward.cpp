// The backward ops of ops/backward.h on a Context.
#include <cstring>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/backward.h"
#include "ops/cpu/kernels.h"

namespace qwen3vl {
namespace ops {

void embedding_backward(const int32_t* ids, int64_t n, const float* dy, int64_t dim, float* dtable,
                        int64_t padding_idx) {
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] == padding_idx) continue;
    float* row = dtable + static_cast<int64_t>(ids[i]) * dim;
    const float* g = dy + i * dim;
    for (int64_t d = 0; d < dim; ++d) row[d] += g[d];
  }
}

void rms_norm_backward(const Context& ctx, const float* x, int64_t rows, int64_t dim, const WeightVector& weight,
                       float eps, const float* dy, float* dx, float* dweight) {
  (void)ctx;
  reference::rms_norm_backward(x, rows, dim, weight, eps, dy, dx, dweight);
}

void layer_norm_backward(const Context& ctx, const float* x, int64_t rows, int64_t dim, const WeightVector& weight,
                         const WeightVector& bias, float eps, const float* dy, float* dx, float* dweight,
                         float* dbias) {
  (void)ctx;
  reference::layer_norm_backward(x, rows, dim, weight, bias, eps, dy, dx, dweight, dbias);
}

void gelu_tanh_backward(const Context& ctx, const float* x, const float* dy, size_t count, float* dx) {
  (void)ctx;
  reference::gelu_tanh_backward(x, dy, count, dx);
}

void gelu_erf_backward(const Context& ctx, const float* x, const float* dy, size_t count, float* dx) {
  (void)ctx;
  reference::gelu_erf_backward(x, dy, count, dx);
}

void silu_mul_backward(const Context& ctx, const float* gate, const float* up, const float* dy, size_t count,
                       float* dgate, float* dup) {
  (void)ctx;
  reference::silu_mul_backward(gate, up, dy, count, dgate, dup);
}

void apply_rotary_backward(const Context& ctx, float* dx, int64_t rows, int64_t heads, int64_t head_dim,
                           const float* cos, const float* sin) {
  (void)ctx;
  reference::apply_rotary_backward(dx, rows, heads, head_dim, cos, sin);
}

void attention_backward(const Context& ctx, const float* q, const float* k, const float* v, int64_t n,
                        const int64_t* cu_seqlens, int64_t num_segments, bool causal, const AttentionShape& shape,
                        float scale, const float* dout, float* dq, float* dk, float* dv) {
  (void)ctx;
  reference::attention_backward(q, k, v, n, cu_seqlens, num_segments, causal, shape, scale, dout, dq, dk, dv);
}

double cross_entropy(const Context& ctx, const float* logits, int64_t rows, int64_t vocab, const int32_t* targets,
                     float grad_scale, float* dlogits, int64_t* count) {
  (void)ctx;
  return reference::cross_entropy(logits, rows, vocab, targets, grad_scale, dlogits, count);
}

}  // namespace ops
}  // namespace qwen3vl
