// The learning-rate schedules' formulas at points that can be checked by hand (bit equality with transformers over
// 1,000 steps is tests/golden/test_optimizer_golden.cpp), and AdamW / clipping properties that need no golden.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "train/adamw.h"
#include "train/grad_clip.h"
#include "train/lr_schedule.h"

namespace qwen3vl {
namespace {

LrSchedule make_schedule(LrScheduleKind kind, int64_t warmup, int64_t total) {
  LrSchedule schedule;
  schedule.kind = kind;
  schedule.warmup_steps = warmup;
  schedule.total_steps = total;
  return schedule;
}

TEST(LrSchedule, ParsesTransformersNamesAndRejectsOthers) {
  EXPECT_EQ(parse_lr_schedule("cosine"), LrScheduleKind::kCosine);
  EXPECT_EQ(parse_lr_schedule("linear"), LrScheduleKind::kLinear);
  EXPECT_EQ(parse_lr_schedule("constant"), LrScheduleKind::kConstant);
  EXPECT_EQ(parse_lr_schedule("constant_with_warmup"), LrScheduleKind::kConstantWithWarmup);
  try {
    parse_lr_schedule("cosine_with_restarts");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cosine_with_restarts"), std::string::npos) << e.what();
  }
}

TEST(LrSchedule, WarmupStepsAreACountOrACeiledRatio) {
  EXPECT_EQ(warmup_steps_for(0, 1000), 0);
  EXPECT_EQ(warmup_steps_for(5, 1000), 5);
  EXPECT_EQ(warmup_steps_for(2.9, 1000), 2);      // int() truncates
  EXPECT_EQ(warmup_steps_for(0.03, 1000), 30);
  EXPECT_EQ(warmup_steps_for(0.07, 100), 8);      // 100 * 0.07 = 7.000000000000001 in double
  EXPECT_EQ(warmup_steps_for(0.001, 10), 1);
  EXPECT_THROW(warmup_steps_for(-1, 10), Error);
}

TEST(LrSchedule, FirstUpdateWithWarmupRunsAtZero) {
  for (LrScheduleKind kind : {LrScheduleKind::kConstantWithWarmup, LrScheduleKind::kLinear, LrScheduleKind::kCosine}) {
    const LrSchedule schedule = make_schedule(kind, 4, 20);
    EXPECT_EQ(schedule.lr(1e-3, 0), 0.0);
    EXPECT_EQ(schedule.factor(1), 0.25);
    EXPECT_EQ(schedule.factor(3), 0.75);
    EXPECT_EQ(schedule.factor(4), 1.0);  // warmup ends at its peak
  }
}

TEST(LrSchedule, DecayShapes) {
  const LrSchedule linear = make_schedule(LrScheduleKind::kLinear, 10, 110);
  EXPECT_EQ(linear.factor(60), 0.5);
  EXPECT_EQ(linear.factor(110), 0.0);
  EXPECT_EQ(linear.factor(150), 0.0);  // past the end: clamped, not negative

  const LrSchedule cosine = make_schedule(LrScheduleKind::kCosine, 10, 110);
  EXPECT_NEAR(cosine.factor(60), 0.5, 1e-15);
  EXPECT_NEAR(cosine.factor(35), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-15);
  EXPECT_EQ(cosine.factor(110), 0.0);
  EXPECT_GT(cosine.factor(160), 0.0);  // half a cycle past the end it rises again, as transformers' does

  const LrSchedule constant = make_schedule(LrScheduleKind::kConstant, 10, 110);
  EXPECT_EQ(constant.lr(3e-5, 0), 3e-5);  // "constant" ignores warmup
  EXPECT_EQ(constant.lr(3e-5, 500), 3e-5);
  EXPECT_EQ(make_schedule(LrScheduleKind::kConstantWithWarmup, 10, 110).factor(500), 1.0);
}

TEST(AdamWUpdate, FirstStepMovesEachParameterByLrTimesSignOfGradient) {
  // After one step m/(sqrt(v)+eps) ~ sign(g) once the bias corrections cancel; decay scales the parameter first.
  AdamWGroup group;
  group.lr = 0.01;
  group.weight_decay = 0.5;
  std::vector<float> param = {1.0f, -2.0f, 3.0f};
  const std::vector<float> grad = {0.25f, -4.0f, 0.0f};
  AdamWState state;
  adamw_update(group, param.data(), grad.data(), param.size(), &state);
  EXPECT_EQ(state.step, 1);
  EXPECT_NEAR(param[0], 1.0f * (1 - 0.005f) - 0.01f, 1e-6);
  EXPECT_NEAR(param[1], -2.0f * (1 - 0.005f) + 0.01f, 1e-6);
  EXPECT_FLOAT_EQ(param[2], 3.0f * (1 - 0.005f));  // zero gradient: only the decay
  EXPECT_FLOAT_EQ(state.exp_avg[1], -0.4f);
  EXPECT_FLOAT_EQ(state.exp_avg_sq[1], 0.016f);
}

TEST(AdamWUpdate, SkipsParametersWithoutGradientAndRejectsMismatchedState) {
  AdamW optimizer;
  const int group = optimizer.add_group(AdamWGroup{});
  std::vector<float> a = {1.0f, 2.0f}, b = {3.0f};
  const std::vector<float> grad_a = {0.5f, 0.5f};
  optimizer.add_param(group, "a", a.data(), grad_a.data(), a.size());
  optimizer.add_param(group, "b", b.data(), nullptr, b.size());
  optimizer.step();
  EXPECT_EQ(optimizer.state(0).step, 1);
  EXPECT_EQ(optimizer.state(1).step, 0);
  EXPECT_TRUE(optimizer.state(1).exp_avg.empty());
  EXPECT_EQ(b[0], 3.0f);
  EXPECT_THROW(optimizer.add_param(3, "c", b.data(), nullptr, 1), std::out_of_range);

  optimizer.state(0).exp_avg.resize(5);  // a checkpoint of the wrong parameter
  EXPECT_THROW(optimizer.step(), std::invalid_argument);
}

TEST(GradClip, ScalesOnlyAboveMaxNormAndReturnsTheTotal) {
  std::vector<float> a = {3.0f}, b = {4.0f};
  std::vector<GradSpan> grads = {{a.data(), 1}, {b.data(), 1}};
  EXPECT_EQ(clip_grad_norm(grads, 10.0), 5.0f);
  EXPECT_EQ(a[0], 3.0f);  // coefficient clamped to 1
  EXPECT_EQ(clip_grad_norm(grads, 1.0), 5.0f);
  EXPECT_NEAR(a[0], 0.6f, 1e-6);
  EXPECT_NEAR(b[0], 0.8f, 1e-6);
  EXPECT_EQ(total_grad_norm({}), 0.0f);
}

}  // namespace
}  // namespace qwen3vl
