#include "train/adamw.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/thread_pool.h"
#include "train/vml_sqrt.h"

namespace qwen3vl {
namespace {

// The scalars of one update as the float32 kernels see them: computed in double like Python, then rounded to float
// where ATen wraps them for a float tensor.
struct UpdateScalars {
  bool decay = false;
  float decay_factor = 1.0f;        // 1 - lr*weight_decay
  float lerp_weight = 0.0f;         // 1 - beta1
  float beta2 = 0.0f;
  float one_minus_beta2 = 0.0f;
  float bias_correction2_sqrt = 1.0f;
  float eps = 0.0f;
  float neg_step_size = 0.0f;       // -lr / bias_correction1
};

UpdateScalars update_scalars(const AdamWGroup& group, int64_t step) {
  UpdateScalars s;
  s.decay = group.weight_decay != 0.0;
  s.decay_factor = static_cast<float>(1.0 - group.lr * group.weight_decay);
  s.lerp_weight = static_cast<float>(1.0 - group.beta1);
  s.beta2 = static_cast<float>(group.beta2);
  s.one_minus_beta2 = static_cast<float>(1.0 - group.beta2);
  const double step_value = static_cast<double>(step);
  const double bias_correction1 = 1.0 - std::pow(group.beta1, step_value);
  const double bias_correction2 = 1.0 - std::pow(group.beta2, step_value);
  // Python's `x ** 0.5` is C pow(x, 0.5), which may differ from sqrt in the last bit.
  s.bias_correction2_sqrt = static_cast<float>(std::pow(bias_correction2, 0.5));
  s.eps = static_cast<float>(group.eps);
  s.neg_step_size = static_cast<float>(-(group.lr / bias_correction1));
  return s;
}

// torch.lerp on float (ATen native/cpu/LerpKernel.cpp, lerp_vec): fma(weight, end - start, start) for |weight| <
// 0.5, else fma(weight - 1, end - start, end). The compiler contracts the scalar tail the same way.
inline float torch_lerp(float start, float end, float weight) {
  const bool small = std::fabs(weight) < 0.5f;
  return std::fma(small ? weight : weight - 1.0f, end - start, small ? start : end);
}

// Elements [begin, end) of one tensor. Needs -ffp-contract=off (CMakeLists.txt) so that only the fused steps fuse.
void update_range(const UpdateScalars& s, float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                  size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    float p = param[i];
    const float g = grad[i];
    if (s.decay) p = p * s.decay_factor;
    const float m = torch_lerp(exp_avg[i], g, s.lerp_weight);
    // addcmul (ATen native/cpu/PointwiseOpsKernel.cpp): self + value*t1*t2 with the last multiply-add fused.
    const float v = std::fma(s.one_minus_beta2 * g, g, exp_avg_sq[i] * s.beta2);
    const float denom = vml_generic_sqrt(v) / s.bias_correction2_sqrt + s.eps;
    param[i] = p + s.neg_step_size * m / denom;  // addcdiv: self + value*t1/t2
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
  }
}

constexpr size_t kElementsPerTask = size_t{1} << 15;

// Advances `state` by one step (allocating the moments on the first) and returns that step's scalars.
UpdateScalars begin_update(const AdamWGroup& group, size_t count, AdamWState* state) {
  if (state->exp_avg.empty() && state->exp_avg_sq.empty()) {
    state->exp_avg.assign(count, 0.0f);
    state->exp_avg_sq.assign(count, 0.0f);
  }
  if (state->exp_avg.size() != count || state->exp_avg_sq.size() != count) {
    throw std::invalid_argument("AdamW: optimizer state holds " + std::to_string(state->exp_avg.size()) +
                                " values for a parameter of " + std::to_string(count));
  }
  state->step += 1;
  return update_scalars(group, state->step);
}

}  // namespace

void adamw_update(const AdamWGroup& group, float* param, const float* grad, size_t count, AdamWState* state) {
  const UpdateScalars scalars = begin_update(group, count, state);
  update_range(scalars, param, grad, state->exp_avg.data(), state->exp_avg_sq.data(), 0, count);
}

int AdamW::add_group(const AdamWGroup& group) {
  groups_.push_back(group);
  return static_cast<int>(groups_.size()) - 1;
}

void AdamW::add_param(int group, const std::string& name, float* data, const float* grad, size_t size) {
  if (group < 0 || group >= group_count()) {
    throw std::out_of_range("AdamW::add_param: no parameter group " + std::to_string(group) + " for " + name);
  }
  params_.push_back(Param{name, data, grad, size, group});
  states_.emplace_back();
}

void AdamW::step(ThreadPool* pool) {
  for (size_t index = 0; index < params_.size(); ++index) {
    const Param& p = params_[index];
    if (!p.grad) continue;
    AdamWState& state = states_[index];
    if (!pool || p.size <= kElementsPerTask) {
      adamw_update(groups_[p.group], p.data, p.grad, p.size, &state);
      continue;
    }
    const UpdateScalars scalars = begin_update(groups_[p.group], p.size, &state);
    const int64_t tasks = static_cast<int64_t>((p.size + kElementsPerTask - 1) / kElementsPerTask);
    pool->parallel_for(tasks, [&](int64_t task, int) {
      const size_t begin = static_cast<size_t>(task) * kElementsPerTask;
      const size_t end = std::min(p.size, begin + kElementsPerTask);
      update_range(scalars, p.data, p.grad, state.exp_avg.data(), state.exp_avg_sq.data(), begin, end);
    });
  }
}

}  // namespace qwen3vl
