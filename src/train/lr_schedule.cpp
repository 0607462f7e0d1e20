#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace qwen3vl {
namespace {

constexpr double kPi = 3.141592653589793;  // math.pi

// The warmup ramp shared by every schedule with warmup: float(step) / float(max(1, W)).
double warmup_factor(int64_t step, int64_t warmup_steps) {
  return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
}

}  // namespace

LrScheduleKind parse_lr_schedule(const std::string& name) {
  if (name == "constant") return LrScheduleKind::kConstant;
  if (name == "constant_with_warmup") return LrScheduleKind::kConstantWithWarmup;
  if (name == "linear") return LrScheduleKind::kLinear;
  if (name == "cosine") return LrScheduleKind::kCosine;
  throw_error("learning-rate schedule \"", name, "\": expected constant, constant_with_warmup, linear or cosine");
}

int64_t warmup_steps_for(double warmup_steps, int64_t total_steps) {
  if (!(warmup_steps >= 0.0)) throw_error("warmup steps ", warmup_steps, ": must be >= 0");
  if (warmup_steps >= 1.0) return static_cast<int64_t>(warmup_steps);
  return static_cast<int64_t>(std::ceil(static_cast<double>(total_steps) * warmup_steps));
}

double LrSchedule::factor(int64_t step) const {
  if (kind == LrScheduleKind::kConstant) return 1.0;
  if (step < warmup_steps) return warmup_factor(step, warmup_steps);
  const double decay_steps = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  switch (kind) {
    case LrScheduleKind::kConstantWithWarmup:
      return 1.0;
    case LrScheduleKind::kLinear:
      return std::max(0.0, static_cast<double>(total_steps - step) / decay_steps);
    case LrScheduleKind::kCosine: {
      const double progress = static_cast<double>(step - warmup_steps) / decay_steps;
      // Python evaluates math.pi * float(num_cycles) * 2.0 * progress left to right.
      return std::max(0.0, 0.5 * (1.0 + std::cos(kPi * num_cycles * 2.0 * progress)));
    }
    case LrScheduleKind::kConstant:
      break;
  }
  return 1.0;
}

}  // namespace qwen3vl
