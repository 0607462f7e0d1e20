// The backward ops of ops/backward.h on a Context: the row- and element-wise ones here run the scalar reference on
// ranges of rows or elements over ctx.pool (each output computed by one thread, as the reference computes it);
// linear_backward.cpp and attention_backward.cpp hold the matmul-shaped ones.
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "ops/backward.h"
#include "ops/cpu/parallel_ranges.h"

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

namespace {

// Rows per block of the norms' weight gradients: each block sums its rows in order into its own partial, and the
// partials are added in block order, so the sum does not depend on how blocks are spread over threads.
constexpr int64_t kNormBlockRows = 64;

// The norms' backward over fixed row blocks: run(r0, r1, dweight_partial, dbias_partial) for each block (partials
// zeroed, null when not wanted), then dweight += sum of the partials (and dbias), split by columns.
template <typename Run>
void norm_backward_blocks(const Context& ctx, int64_t rows, int64_t dim, float* dweight, float* dbias, Run&& run) {
  const int64_t blocks = (rows + kNormBlockRows - 1) / kNormBlockRows;
  std::vector<float> weight_partials(dweight ? static_cast<size_t>(blocks * dim) : 0, 0.f);
  std::vector<float> bias_partials(dbias ? static_cast<size_t>(blocks * dim) : 0, 0.f);
  const int64_t min_blocks =
      std::max<int64_t>(1, cpu::kMinParallelElements / (kNormBlockRows * std::max<int64_t>(dim, 1)));
  cpu::for_ranges(ctx, blocks, 1, min_blocks, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      run(b * kNormBlockRows, std::min(rows, (b + 1) * kNormBlockRows),
          dweight ? weight_partials.data() + b * dim : nullptr, dbias ? bias_partials.data() + b * dim : nullptr);
  });
  auto reduce = [&](const std::vector<float>& partials, float* target) {
    for (int64_t d = 0; d < dim; ++d) {
      float sum = 0.f;
      for (int64_t b = 0; b < blocks; ++b) sum += partials[b * dim + d];
      target[d] += sum;
    }
  };
  if (dweight) reduce(weight_partials, dweight);
  if (dbias) reduce(bias_partials, dbias);
}

// Element-wise ops: whole chunks of the reference on each thread (each element depends on its own inputs only).
template <typename Fn>
void elementwise(const Context& ctx, size_t count, Fn&& fn) {
  cpu::for_ranges(ctx, static_cast<int64_t>(count), 64, cpu::kMinParallelElements,
                  [&](int64_t i0, int64_t i1) { fn(static_cast<size_t>(i0), static_cast<size_t>(i1 - i0)); });
}

}  // namespace

void rms_norm_backward(const Context& ctx, const float* x, int64_t rows, int64_t dim, const WeightVector& weight,
                       float eps, const float* dy, float* dx, float* dweight) {
  norm_backward_blocks(ctx, rows, dim, dweight, nullptr, [&](int64_t r0, int64_t r1, float* dw, float*) {
    reference::rms_norm_backward(x + r0 * dim, r1 - r0, dim, weight, eps, dy + r0 * dim, dx ? dx + r0 * dim : nullptr,
                                 dw);
  });
}

void layer_norm_backward(const Context& ctx, const float* x, int64_t rows, int64_t dim, const WeightVector& weight,
                         const WeightVector& bias, float eps, const float* dy, float* dx, float* dweight,
                         float* dbias) {
  norm_backward_blocks(ctx, rows, dim, dweight, dbias, [&](int64_t r0, int64_t r1, float* dw, float* db) {
    reference::layer_norm_backward(x + r0 * dim, r1 - r0, dim, weight, bias, eps, dy + r0 * dim,
                                   dx ? dx + r0 * dim : nullptr, dw, db);
  });
}

void gelu_tanh_backward(const Context& ctx, const float* x, const float* dy, size_t count, float* dx) {
  elementwise(ctx, count, [&](size_t i, size_t c) { reference::gelu_tanh_backward(x + i, dy + i, c, dx + i); });
}

void gelu_erf_backward(const Context& ctx, const float* x, const float* dy, size_t count, float* dx) {
  elementwise(ctx, count, [&](size_t i, size_t c) { reference::gelu_erf_backward(x + i, dy + i, c, dx + i); });
}

void silu_mul_backward(const Context& ctx, const float* gate, const float* up, const float* dy, size_t count,
                       float* dgate, float* dup) {
  elementwise(ctx, count, [&](size_t i, size_t c) {
    reference::silu_mul_backward(gate + i, up + i, dy + i, c, dgate + i, dup + i);
  });
}

void apply_rotary_backward(const Context& ctx, float* dx, int64_t rows, int64_t heads, int64_t head_dim,
                           const float* cos, const float* sin) {
  const int64_t row_size = heads * head_dim;
  cpu::for_ranges(ctx, rows, 1, std::max<int64_t>(1, cpu::kMinParallelElements / std::max<int64_t>(row_size, 1)),
                  [&](int64_t r0, int64_t r1) {
                    reference::apply_rotary_backward(dx + r0 * row_size, r1 - r0, heads, head_dim,
                                                     cos + r0 * head_dim, sin + r0 * head_dim);
                  });
}

double cross_entropy(const Context& ctx, const float* logits, int64_t rows, int64_t vocab, const int32_t* targets,
                     float grad_scale, float* dlogits, int64_t* count) {
  for (int64_t row = 0; row < rows; ++row)
    if (targets[row] != -100 && (targets[row] < 0 || targets[row] >= vocab))
      throw_error("cross_entropy: target ", targets[row], " of row ", row, " outside [0, ", vocab, ")");
  // Each row's loss on its own, then summed in row order as the reference does.
  std::vector<double> losses(static_cast<size_t>(rows), 0.0);
  cpu::for_ranges(ctx, rows, 1, std::max<int64_t>(1, cpu::kMinParallelElements / std::max<int64_t>(vocab, 1)),
                  [&](int64_t r0, int64_t r1) {
                    for (int64_t row = r0; row < r1; ++row)
                      losses[row] = reference::cross_entropy(logits + row * vocab, 1, vocab, targets + row,
                                                             grad_scale, dlogits ? dlogits + row * vocab : nullptr,
                                                             nullptr);
                  });
  double loss = 0.0;
  int64_t supervised = 0;
  for (int64_t row = 0; row < rows; ++row) {
    loss += losses[row];
    supervised += targets[row] != -100;
  }
  if (count) *count = supervised;
  return loss;
}

}  // namespace ops
}  // namespace qwen3vl
