// Global-norm gradient clipping as torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=2) computes it on
// CPU in torch 2.15 (torch/nn/utils/clip_grad.py, _get_total_norm and _clip_grads_with_norm_), bit for bit:
//
//   norms = [linalg.vector_norm(g, 2) for g in grads]        float32, one per tensor
//   total = linalg.vector_norm(stack(norms), 2)              float32
//   clip_coef = max_norm / (total + 1e-6)                    Tensor.__rtruediv__: reciprocal(total + 1e-6) * max_norm
//   g.mul_(clamp(clip_coef, max=1.0))                        every gradient, also when the coefficient is 1
//
// The Trainer logs `total` as grad_norm. Under data parallelism clip the all-reduced gradient, as DDP does.
#pragma once

#include <cstddef>
#include <vector>

namespace qwen3vl {

class ThreadPool;

// A contiguous float32 gradient.
struct GradSpan {
  float* data = nullptr;
  size_t size = 0;
};

// torch.linalg.vector_norm(x, 2) of a contiguous float32 tensor, as ATen's CPU kernel sums it (AVX2 build,
// native/cpu/ReduceOpsKernel.cpp, norm_kernel_tensor_iterator_impl): eight float lanes accumulate x*x over the
// first n - n%8 elements, the lanes are added left to right, the last n%8 elements are added one at a time (the
// compiled loop squares the first four of them separately and fuses multiply and add for the rest), then sqrt.
float torch_vector_norm2(const float* x, size_t n);

// The 2-norm of all gradients viewed as one vector: the norm of the per-tensor norms (torch's total_norm).
float total_grad_norm(const std::vector<GradSpan>& grads, ThreadPool* pool = nullptr);

// min(max_norm / (total_norm + 1e-6), 1) as torch rounds it.
float clip_coefficient(float total_norm, double max_norm);

// Multiplies every gradient by `coefficient` (float32).
void scale_grads(const std::vector<GradSpan>& grads, float coefficient, ThreadPool* pool = nullptr);

// clip_grad_norm_: total_grad_norm, then scale_grads by clip_coefficient. Returns the total norm.
float clip_grad_norm(const std::vector<GradSpan>& grads, double max_norm, ThreadPool* pool = nullptr);

}  // namespace qwen3vl
