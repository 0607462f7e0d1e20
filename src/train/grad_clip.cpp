#include "train/grad_clip.h"

#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"

namespace qwen3vl {
namespace {

constexpr size_t kLanes = 8;  // Vectorized<float>::size() in torch's AVX2 kernels
constexpr size_t kElementsPerTask = size_t{1} << 15;

}  // namespace

// Needs -ffp-contract=off (CMakeLists.txt): only the fused tail steps may fuse.
float torch_vector_norm2(const float* x, size_t n) {
  float lanes[kLanes] = {};
  const size_t body = n - n % kLanes;
  for (size_t d = 0; d < body; d += kLanes) {
    for (size_t lane = 0; lane < kLanes; ++lane) lanes[lane] = lanes[lane] + x[d + lane] * x[d + lane];
  }
  float sum = lanes[0];
  for (size_t lane = 1; lane < kLanes; ++lane) sum = sum + lanes[lane];
  const size_t tail = n - body;
  const size_t unfused_end = body + tail / 4 * 4;
  for (size_t d = body; d < unfused_end; ++d) sum = sum + x[d] * x[d];
  for (size_t d = unfused_end; d < n; ++d) sum = std::fma(x[d], x[d], sum);
  return std::sqrt(sum);
}

float total_grad_norm(const std::vector<GradSpan>& grads, ThreadPool* pool) {
  std::vector<float> norms(grads.size());
  auto norm_of = [&](int64_t index, int) { norms[index] = torch_vector_norm2(grads[index].data, grads[index].size); };
  if (pool) {
    pool->parallel_for(static_cast<int64_t>(grads.size()), norm_of);
  } else {
    for (size_t i = 0; i < grads.size(); ++i) norm_of(static_cast<int64_t>(i), 0);
  }
  return torch_vector_norm2(norms.data(), norms.size());
}

float clip_coefficient(float total_norm, double max_norm) {
  const float shifted = total_norm + static_cast<float>(1e-6);
  const float coefficient = (1.0f / shifted) * static_cast<float>(max_norm);
  return std::isnan(coefficient) ? coefficient : std::min(coefficient, 1.0f);  // torch.clamp keeps NaN
}

void scale_grads(const std::vector<GradSpan>& grads, float coefficient, ThreadPool* pool) {
  for (const GradSpan& g : grads) {
    auto scale = [&](int64_t task, int) {
      const size_t begin = static_cast<size_t>(task) * kElementsPerTask;
      const size_t end = std::min(g.size, begin + kElementsPerTask);
      for (size_t i = begin; i < end; ++i) g.data[i] = g.data[i] * coefficient;
    };
    const int64_t tasks = static_cast<int64_t>((g.size + kElementsPerTask - 1) / kElementsPerTask);
    if (pool && tasks > 1) {
      pool->parallel_for(tasks, scale);
    } else {
      for (int64_t task = 0; task < tasks; ++task) scale(task, 0);
    }
  }
}

float clip_grad_norm(const std::vector<GradSpan>& grads, double max_norm, ThreadPool* pool) {
  const float total = total_grad_norm(grads, pool);
  scale_grads(grads, clip_coefficient(total, max_norm), pool);
  return total;
}

}  // namespace qwen3vl
