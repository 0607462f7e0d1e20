// Learning-rate schedules as transformers 5.23 builds them (optimization.py, get_scheduler) on torch's LambdaLR:
// the learning rate of a parameter group for an update is base_lr * lambda(step), `step` counting the optimizer
// steps already taken (0 for the first update), all in double like the Python floats. So with warmup the first
// update runs at lr 0 (the moments still advance), and the lr the Trainer logs for an update is the one it used.
//
//   constant              lambda = 1 (warmup ignored, as get_scheduler ignores it)
//   constant_with_warmup  s / max(1, W) while s < W, then 1
//   linear                s / max(1, W) while s < W, then max(0, (T - s) / max(1, T - W))
//   cosine                s / max(1, W) while s < W, then max(0, 0.5 * (1 + cos(pi * cycles * 2 * progress))),
//                         progress = (s - W) / max(1, T - W), cycles = 0.5
#pragma once

#include <cstdint>
#include <string>

namespace qwen3vl {

enum class LrScheduleKind { kConstant, kConstantWithWarmup, kLinear, kCosine };

// "constant", "constant_with_warmup", "linear" or "cosine" (transformers' SchedulerType values); throws
// qwen3vl::Error naming the value otherwise.
LrScheduleKind parse_lr_schedule(const std::string& name);

// TrainingArguments.get_warmup_steps: warmup_steps >= 1 is a step count (truncated, as int() does), a value in
// [0, 1) is a ratio of the total: ceil(total_steps * warmup_steps).
int64_t warmup_steps_for(double warmup_steps, int64_t total_steps);

struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::kConstant;
  int64_t warmup_steps = 0;   // W
  int64_t total_steps = 0;    // T: max_steps (linear and cosine need it)
  double num_cycles = 0.5;    // cosine only

  // lambda(step) for `step` optimizer steps already taken.
  double factor(int64_t step) const;
  // What LambdaLR writes into a group whose initial lr is `base_lr`: base_lr * lambda(step).
  double lr(double base_lr, int64_t step) const { return base_lr * factor(step); }
};

}  // namespace qwen3vl
