// Splitting an op's outputs over the context's thread pool, for the forward ops (ops/cpu/dispatch.cpp) and the
// backward ops (ops/cpu/dispatch_backward.cpp, ops/cpu/linear_backward.cpp). Each output element belongs to exactly
// one range and is computed there in a fixed order that does not depend on the range bounds, so results are the
// same bits at any thread count.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "ops/ops.h"

namespace qwen3vl {
namespace ops {
namespace cpu {

// Runs fn(begin, end) over [0, total) cut into ranges of whole `granule`s of at least `min_piece` units (smaller
// totals stay on the calling thread), a few ranges per thread so that a thread slowed by other work is evened out.
template <typename Fn>
void for_ranges(const Context& ctx, int64_t total, int64_t granule, int64_t min_piece, Fn&& fn) {
  const int threads = ctx.pool ? ctx.pool->size() : 1;
  if (total <= 0) return;
  if (threads == 1 || total <= min_piece) {
    fn(int64_t{0}, total);
    return;
  }
  const int64_t units = (total + granule - 1) / granule;
  const int64_t max_pieces = std::max<int64_t>(1, total / std::max<int64_t>(min_piece, 1));
  const int64_t pieces = std::min<int64_t>({units, max_pieces, int64_t{4} * threads});
  const int64_t per_piece = (units + pieces - 1) / pieces;
  const int64_t count = (units + per_piece - 1) / per_piece;
  ctx.pool->parallel_for(count, [&](int64_t piece, int) {
    const int64_t begin = piece * per_piece * granule;
    const int64_t end = std::min(total, (piece + 1) * per_piece * granule);
    if (begin < end) fn(begin, end);
  });
}

// Runs fn(task) for every task in [0, tasks) on the pool (or in order on the calling thread without one).
template <typename Fn>
void for_tasks(const Context& ctx, int64_t tasks, Fn&& fn) {
  if (ctx.pool && tasks > 1) {
    ctx.pool->parallel_for(tasks, [&](int64_t task, int) { fn(task); });
  } else {
    for (int64_t t = 0; t < tasks; ++t) fn(t);
  }
}

// Per-thread float buffers of the backward ops, kept for the thread's life: a training step reuses them instead of
// faulting in fresh pages for every temporary. Buffer `slot` (< kBackwardSlots) holds at least `count` floats, its
// contents unspecified. A caller owns its slots while it runs (ops/cpu/linear_backward.cpp and attention_backward.cpp
// list theirs), and never holds one across a call that uses the same slot on the same thread.
constexpr int kBackwardSlots = 13;
inline float* backward_scratch(int slot, size_t count) {
  thread_local std::vector<float> buffers[kBackwardSlots];
  std::vector<float>& buffer = buffers[slot];
  if (buffer.size() < count) {
    buffer.clear();
    buffer.shrink_to_fit();
    buffer.resize(count);
  }
  return buffer.data();
}

// Element-wise work is split only when large enough to pay for the hand-off.
constexpr int64_t kMinParallelElements = 1 << 15;

}  // namespace cpu
}  // namespace ops
}  // namespace qwen3vl
