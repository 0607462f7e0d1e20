#include "train/trainer.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"
#include "train/grad_clip.h"

namespace qwen3vl {

Trainer::Trainer(const ModelConfig& config, ParameterSet& params, const ops::Context& ctx,
                 const TrainerOptions& options, Communicator& comm)
    : params_(params),
      options_(options),
      comm_(comm),
      ctx_(ctx),
      model_(config, params.text_weights(), &params.vision_weights(), ctx, options.checkpoint_layers),
      groups_(optimizer_groups(params, options.optimizer)),
      adamw_(make_adamw(params, groups_, options.optimizer)) {
  if (options.gradient_accumulation_steps < 1)
    throw_error("gradient_accumulation_steps must be at least 1, not ", options.gradient_accumulation_steps);
}

std::vector<GradSpan> Trainer::grad_spans() const {
  std::vector<GradSpan> spans;
  for (const Parameter& p : params_.parameters()) spans.push_back(GradSpan{p.grad, static_cast<size_t>(p.numel)});
  return spans;
}

StepResult Trainer::step(const std::vector<const TrainInputs*>& micro_batches) {
  const int64_t accumulation = options_.gradient_accumulation_steps;
  if (static_cast<int64_t>(micro_batches.size()) != accumulation)
    throw_error("internal: a step of ", accumulation, " micro-batches got ", micro_batches.size());
  const int64_t world = comm_.size();
  params_.zero_grad();
  // Summed over ranks below: [loss, tokens, supervised].
  double totals[3] = {0.0, 0.0, 0.0};
  for (const TrainInputs* batch : micro_batches) {
    const int64_t count = supervised_tokens(*batch);
    totals[1] += static_cast<double>(batch->input_ids.size());
    if (count == 0) continue;
    // loss_i / GA, and DDP's mean over ranks: rounded to float once, as torch's scalar reaches the kernels.
    const float scale = static_cast<float>(1.0 / (static_cast<double>(count) * accumulation * world));
    const LossSum loss = model_.forward_backward(*batch, scale, params_.text_grads(), &params_.vision_grads());
    totals[0] += loss.sum / static_cast<double>(loss.count) / static_cast<double>(accumulation);
    totals[2] += static_cast<double>(count);
  }
  if (world > 1) {
    comm_.all_reduce_sum(params_.grads(), static_cast<size_t>(params_.numel()));
    comm_.all_reduce_sum(totals, 3);
  }
  StepResult result;
  const std::vector<GradSpan> spans = grad_spans();
  result.grad_norm = options_.max_grad_norm > 0 ? clip_grad_norm(spans, options_.max_grad_norm, ctx_.pool)
                                                : total_grad_norm(spans, ctx_.pool);
  for (int g = 0; g < adamw_.group_count(); ++g) {
    const double lr = options_.schedule.lr(groups_[static_cast<size_t>(g)].base_lr, global_step_);
    adamw_.group(g).lr = lr;
    result.lrs.push_back(lr);
  }
  adamw_.step(ctx_.pool);
  params_.refresh();
  ++global_step_;
  result.step = global_step_;
  result.loss = totals[0] / static_cast<double>(world);
  result.tokens = static_cast<int64_t>(totals[1]);
  result.supervised = static_cast<int64_t>(totals[2]);
  return result;
}

namespace {

TensorToWrite f32_tensor(const std::string& name, const float* data, size_t count) {
  return TensorToWrite{name, "F32", {static_cast<int64_t>(count)}, data, count * sizeof(float), false};
}

const std::string kStateFile = "train_state.safetensors";
const std::string kStepFile = "train_state.json";

// Writes `text` to `path` through a temporary file, so a crash leaves the old file or the new one.
void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw_error(partial, ": cannot write");
  }
  std::filesystem::rename(partial, path);
}

}  // namespace

void Trainer::save_state(const std::string& dir) const {
  std::vector<TensorToWrite> tensors;
  for (const Parameter& p : params_.parameters())
    tensors.push_back(f32_tensor(p.name, p.value, static_cast<size_t>(p.numel)));
  for (size_t i = 0; i < adamw_.param_count(); ++i) {
    const AdamW::Param& p = adamw_.param(i);
    const AdamWState& s = adamw_.state(i);
    if (s.exp_avg.empty()) continue;
    tensors.push_back(f32_tensor(p.name + ".exp_avg", s.exp_avg.data(), s.exp_avg.size()));
    tensors.push_back(f32_tensor(p.name + ".exp_avg_sq", s.exp_avg_sq.data(), s.exp_avg_sq.size()));
  }
  const std::string path = dir + "/" + kStateFile, partial = path + ".partial";
  write_safetensors(partial, tensors, {});
  std::filesystem::rename(partial, path);
  // Every parameter has a gradient each step, so every AdamW state's step is the global step.
  write_file_atomically(dir + "/" + kStepFile, nlohmann::json{{"global_step", global_step_}}.dump() + "\n");
}

void Trainer::load_state(const std::string& dir) {
  const std::string path = dir + "/" + kStateFile;
  if (!std::filesystem::exists(path)) throw_error(path, ": no training state (was the checkpoint written by finetune?)");
  const SafetensorsFile file(path);
  auto load = [&](const std::string& name, float* into, size_t count) {
    const auto it = file.tensors().find(name);
    if (it == file.tensors().end()) throw_error(path, ": no tensor ", name);
    if (it->second.dtype != DType::F32 || it->second.numel() != static_cast<int64_t>(count))
      throw_error(path, ": ", name, " is ", it->second.shape_string(), ", this run trains ", count, " float32 values");
    std::memcpy(into, it->second.data, count * sizeof(float));
  };
  for (const Parameter& p : params_.parameters()) load(p.name, p.value, static_cast<size_t>(p.numel));
  const std::string step_path = dir + "/" + kStepFile;
  std::ifstream step_file(step_path);
  const nlohmann::json steps = nlohmann::json::parse(step_file, nullptr, false);
  // The step goes on counting (AdamW's per-parameter steps too) and reaches the schedule and the bias corrections as
  // a double: a negative step, or one past 2^53, is none a run wrote (and INT64_MAX would overflow the next step).
  constexpr uint64_t kMaxStep = uint64_t{1} << 53;
  if (steps.is_discarded() || !steps.contains("global_step") || !steps["global_step"].is_number_unsigned() ||
      steps["global_step"].get<uint64_t>() > kMaxStep)
    throw_error(step_path, ": no global_step from 0 to 2^53");
  global_step_ = steps["global_step"].get<int64_t>();
  for (size_t i = 0; i < adamw_.param_count(); ++i) {
    const AdamW::Param& p = adamw_.param(i);
    AdamWState& s = adamw_.state(i);
    s.step = global_step_;
    s.exp_avg.clear();
    s.exp_avg_sq.clear();
    if (s.step == 0) continue;
    s.exp_avg.resize(p.size);
    s.exp_avg_sq.resize(p.size);
    load(p.name + ".exp_avg", s.exp_avg.data(), p.size);
    load(p.name + ".exp_avg_sq", s.exp_avg_sq.data(), p.size);
  }
  params_.refresh();
}

}  // namespace qwen3vl
