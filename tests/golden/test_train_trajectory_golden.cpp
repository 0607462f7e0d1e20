// 20 optimizer steps against PyTorch (scripts/reference/dump_train_trajectory.py, tests/fixtures/train/trajectory):
// gradient accumulation 2, warmup + cosine, clipping at 1.0, weight decay, qwen-vl-finetune's lr groups (three
// learning rates for full fine-tuning), on tiny-fp32-untied-sharded, full and LoRA. Per step the loss, the gradient
// norm and every tensor's norm within 1e-5, the learning rates identical, the final weights within 1e-5. Also:
// 10 steps, save, resume in a fresh trainer, 10 steps equals 20 steps bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "engine/loaded_model.h"
#include "test_util.h"
#include "train/communicator.h"
#include "train/trainer.h"
#include "train_golden.h"

namespace qwen3vl {
namespace {

constexpr double kTol = 1e-5;  // the bar: per-step loss and final weights
const char* const kCheckpoint = "tiny-fp32-untied-sharded";

std::unique_ptr<LoadedModel> load_checkpoint() {
  LoadOptions options;
  options.require_tokenizer = false;
  options.threads = 1;
  return load_model(testing::fixtures_dir() + "/models/" + kCheckpoint, options);
}

struct Case {
  TuneFlags tune;
  LoraSpec lora;
  std::string adapter_dir;
  TrainerOptions options;
};

Case make_case(const std::string& name, const nlohmann::json& hyper) {
  Case c;
  if (name == "full") {
    c.tune = TuneFlags{true, true, true, true};
    c.options.optimizer.mm_projector_lr = hyper["mm_projector_lr"].get<double>();
    c.options.optimizer.vision_tower_lr = hyper["vision_tower_lr"].get<double>();
  } else {
    c.lora.target_modules = {"all-linear"};
    c.lora.r = 4;
    c.lora.alpha = 8.0;
    c.adapter_dir = testing::train_grads_dir() + "/" + kCheckpoint + "/lora";
  }
  c.options.optimizer.learning_rate = hyper["learning_rate"].get<double>();
  c.options.optimizer.weight_decay = hyper["weight_decay"].get<double>();
  c.options.gradient_accumulation_steps = hyper["gradient_accumulation_steps"].get<int64_t>();
  c.options.max_grad_norm = hyper["max_grad_norm"].get<double>();
  c.options.schedule.kind = LrScheduleKind::kCosine;
  c.options.schedule.warmup_steps = hyper["num_warmup_steps"].get<int64_t>();
  c.options.schedule.total_steps = hyper["num_training_steps"].get<int64_t>();
  return c;
}

// A model with its trainable state and trainer.
struct TrainRun {
  std::unique_ptr<LoadedModel> model = load_checkpoint();
  std::unique_ptr<Communicator> comm = make_local_communicator();
  std::unique_ptr<ParameterSet> params;
  std::unique_ptr<Trainer> trainer;

  explicit TrainRun(const Case& c) {
    LoraInit init;
    init.adapter_dir = c.adapter_dir;
    params = std::make_unique<ParameterSet>(
        *model, select_modules(model->config, model->text_weights, model->vision_weights, c.tune, c.lora), init);
    trainer = std::make_unique<Trainer>(model->config, *params, ops::Context{}, c.options, *comm);
  }

  StepResult step(const std::vector<TrainInputs>& samples, const testing::TrajectoryStep& golden) {
    std::vector<const TrainInputs*> micro;
    for (int64_t s : golden.micro_batch_samples) micro.push_back(&samples.at(static_cast<size_t>(s)));
    return trainer->step(micro);
  }
};

double l2(const float* v, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(v[i]) * v[i];
  return std::sqrt(s);
}

class TrainTrajectoryGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(TrainTrajectoryGolden, TwentyStepsFollowPyTorch) {
  const testing::TrajectoryGolden golden = testing::load_trajectory_golden(GetParam());
  const Case c = make_case(GetParam(), golden.index["hyperparameters"]);
  TrainRun run(c);
  const std::vector<TrainInputs> samples = testing::sample_inputs(testing::load_train_golden_batch(), run.model->config);

  // qwen-vl-finetune's groups, with the same members.
  ASSERT_EQ(run.trainer->groups().size(), golden.groups.size());
  for (size_t g = 0; g < golden.groups.size(); ++g) {
    std::vector<std::string> ours;
    for (size_t i : run.trainer->groups()[g].parameters) ours.push_back(run.params->parameters()[i].name);
    std::vector<std::string> theirs = golden.groups[g].params;
    std::sort(ours.begin(), ours.end());
    std::sort(theirs.begin(), theirs.end());
    EXPECT_EQ(ours, theirs) << "group " << golden.groups[g].name;
  }
  double worst_loss = 0.0, worst_norm = 0.0;
  for (const testing::TrajectoryStep& step : golden.steps) {
    const StepResult r = run.step(samples, step);
    double ref_loss = 0.0;
    for (double l : step.micro_batch_losses) ref_loss += l / static_cast<double>(step.micro_batch_losses.size());
    EXPECT_NEAR(r.loss, ref_loss, kTol) << "step " << r.step;
    worst_loss = std::max(worst_loss, std::abs(r.loss - ref_loss));
    EXPECT_NEAR(r.grad_norm, step.grad_norm_before_clip, kTol * step.grad_norm_before_clip) << "step " << r.step;
    EXPECT_EQ(r.lrs, step.lr) << "step " << r.step;
    for (size_t t = 0; t < golden.tensors.size(); ++t) {
      const Parameter* p = run.params->find(golden.tensors[t]);
      ASSERT_NE(p, nullptr) << golden.tensors[t];
      const double norm = l2(p->value, p->numel);
      EXPECT_NEAR(norm, step.param_l2[t], kTol * step.param_l2[t]) << "step " << r.step << " " << p->name;
      worst_norm = std::max(worst_norm, std::abs(norm - step.param_l2[t]) / step.param_l2[t]);
    }
  }
  const auto final_weights = golden.weights_after(static_cast<int>(golden.steps.size()));
  EXPECT_EQ(final_weights.size(), run.params->parameters().size());
  double worst_weight = 0.0;
  for (const auto& [name, ref] : final_weights) {
    const Parameter* p = run.params->find(name);
    ASSERT_NE(p, nullptr) << name;
    ASSERT_EQ(p->numel, ref.numel()) << name;
    for (int64_t i = 0; i < p->numel; ++i) {
      const double d = std::abs(static_cast<double>(p->value[i]) - ref.values[static_cast<size_t>(i)]);
      worst_weight = std::max(worst_weight, d);
      ASSERT_LE(d, kTol) << name << "[" << i << "]";
    }
  }
  RecordProperty("worst", "loss " + testing::scientific(worst_loss) + " tensor-norm rel " + testing::scientific(worst_norm) +
                              " weight abs " + testing::scientific(worst_weight));
}

INSTANTIATE_TEST_SUITE_P(Cases, TrainTrajectoryGolden, ::testing::Values("full", "lora"));

TEST(TrainResume, TenStepsSavedAndResumedEqualTwentyBitForBit) {
  const testing::TrajectoryGolden golden = testing::load_trajectory_golden("lora");
  const Case c = make_case("lora", golden.index["hyperparameters"]);
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "qwen3vl_train_resume_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  TrainRun straight(c);
  const std::vector<TrainInputs> samples = testing::sample_inputs(testing::load_train_golden_batch(), straight.model->config);
  for (const auto& step : golden.steps) straight.step(samples, step);

  {
    TrainRun first(c);
    for (size_t s = 0; s < 10; ++s) first.step(samples, golden.steps[s]);
    first.trainer->save_state(dir.string());
  }
  TrainRun resumed(c);
  resumed.trainer->load_state(dir.string());
  EXPECT_EQ(resumed.trainer->global_step(), 10);
  for (size_t s = 10; s < golden.steps.size(); ++s) resumed.step(samples, golden.steps[s]);
  std::filesystem::remove_all(dir);

  ASSERT_EQ(resumed.params->numel(), straight.params->numel());
  EXPECT_EQ(std::memcmp(resumed.params->values(), straight.params->values(),
                        static_cast<size_t>(straight.params->numel()) * sizeof(float)),
            0);
  for (size_t i = 0; i < straight.trainer->optimizer().param_count(); ++i)
    EXPECT_EQ(resumed.trainer->optimizer().state(i).exp_avg_sq, straight.trainer->optimizer().state(i).exp_avg_sq)
        << straight.trainer->optimizer().param(i).name;
}

}  // namespace
}  // namespace qwen3vl
