// AdamW exactly as torch.optim.AdamW(foreach=False, fused=False) computes it on CPU in torch 2.15
// (torch/optim/adam.py, _single_tensor_adam with decoupled_weight_decay=True), bit for bit on float32 tensors:
//
//   step += 1
//   param.mul_(1 - lr*weight_decay)                        (skipped when weight_decay == 0)
//   exp_avg.lerp_(grad, 1 - beta1)
//   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
//   bias_correction1 = 1 - beta1**step;  bias_correction2 = 1 - beta2**step      (Python floats: double)
//   step_size = lr / bias_correction1
//   denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(eps)
//   param.addcdiv_(exp_avg, denom, value=-step_size)
//
// Every Python scalar reaches the float32 kernels rounded to float. Where ATen's CPU kernels (AVX2 build) fuse a
// multiply and an add, so does this code: lerp is a fused multiply-add in both its branches, and addcmul is
// fma(value*g, g, v); the other operations round after each step. The square root is torch.sqrt's, which is MKL's
// and not correctly rounded on the AMD CPU that made the goldens (train/vml_sqrt.h); with std::sqrt 2 to 67 of
// 356 parameters differ after 1,000 steps. Measured against torch in tests/golden/test_optimizer_golden.cpp.
//
// Parameters whose gradient is null are skipped (torch skips p.grad is None): their state does not advance.
// The optimizer state (per parameter: step, exp_avg, exp_avg_sq) is plain data, read and written for checkpoints.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qwen3vl {

class ThreadPool;

// One parameter group's hyperparameters (torch's param_group keys). `lr` is what the scheduler sets each step.
struct AdamWGroup {
  double lr = 1e-3;
  double weight_decay = 1e-2;  // torch.optim.AdamW's default; HF TrainingArguments passes 0.0 unless set
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

// One parameter's optimizer state, as torch keeps it (state["step"] is a float32 tensor there: exact below 2^24).
struct AdamWState {
  int64_t step = 0;
  std::vector<float> exp_avg;     // empty until the first step, then the parameter's size
  std::vector<float> exp_avg_sq;
};

// One update of `count` floats of `param` from `grad` (torch's loop body for one tensor). Allocates the moments
// on the first step.
void adamw_update(const AdamWGroup& group, float* param, const float* grad, size_t count, AdamWState* state);

class AdamW {
 public:
  // A tensor the optimizer updates in place; `grad` is read by step() and may be null (frozen for now).
  struct Param {
    std::string name;
    float* data = nullptr;
    const float* grad = nullptr;
    size_t size = 0;
    int group = 0;
  };

  int add_group(const AdamWGroup& group);  // returns the group's index
  void add_param(int group, const std::string& name, float* data, const float* grad, size_t size);

  int group_count() const { return static_cast<int>(groups_.size()); }
  AdamWGroup& group(int index) { return groups_.at(index); }
  const AdamWGroup& group(int index) const { return groups_.at(index); }

  size_t param_count() const { return params_.size(); }
  Param& param(size_t index) { return params_.at(index); }
  const Param& param(size_t index) const { return params_.at(index); }
  AdamWState& state(size_t index) { return states_.at(index); }
  const AdamWState& state(size_t index) const { return states_.at(index); }

  // One optimizer step over every parameter with a gradient, in the order they were added. With a pool the
  // elements are split over its threads (element-wise arithmetic: the same bits at any thread count).
  void step(ThreadPool* pool = nullptr);

 private:
  std::vector<AdamWGroup> groups_;
  std::vector<Param> params_;
  std::vector<AdamWState> states_;
};

}  // namespace qwen3vl
