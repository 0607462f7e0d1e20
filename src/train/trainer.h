// One optimizer step at a time, as transformers 5.23's Trainer runs it (trainer.py _inner_training_loop and
// training_step, with accelerate's clip_grad_norm_):
//   zero the gradients
//   for each of this rank's GA micro-batches: loss_i = ForCausalLMLoss (mean over its supervised tokens);
//       backward of loss_i / GA (Qwen3VLForConditionalGeneration.accepts_loss_kwargs is False, so the Trainer divides
//       each micro-batch's mean by the accumulation steps instead of normalising by the tokens of the whole step)
//   data parallel: gradients summed over the ranks in rank order and divided by the world size (DDP's mean), here
//       folded into each micro-batch's scale 1 / (N_i * GA * world): the same gradient as one process running all
//       GA * world micro-batches with accumulation GA * world
//   grad_norm = clip_grad_norm_(parameters, max_grad_norm) (0 or less: no clipping, the norm is still reported)
//   every group's lr = base_lr * schedule(step); AdamW step; DoRA norms refreshed
// A micro-batch without a supervised token contributes nothing (the Trainer would backpropagate a NaN mean).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "model/model_trainer.h"
#include "train/adamw.h"
#include "train/communicator.h"
#include "train/grad_clip.h"
#include "train/lr_schedule.h"
#include "train/optimizer_groups.h"
#include "train/parameters.h"

namespace qwen3vl {

struct TrainerOptions {
  OptimizerSettings optimizer;
  LrSchedule schedule;
  int64_t gradient_accumulation_steps = 1;
  double max_grad_norm = 1.0;    // TrainingArguments.max_grad_norm's default
  bool checkpoint_layers = false;  // recompute each layer in the backward (gradient checkpointing)
};

struct StepResult {
  int64_t step = 0;           // optimizer steps done after this one (1 for the first)
  double loss = 0.0;          // the Trainer's logged loss: sum over micro-batches of mean_i / GA, averaged over ranks
  float grad_norm = 0.f;      // before clipping
  std::vector<double> lrs;    // per group, the lr this step used
  int64_t tokens = 0;         // tokens of every micro-batch of every rank
  int64_t supervised = 0;     // supervised tokens, likewise
};

class Trainer {
 public:
  // `params` and `comm` must outlive the trainer.
  Trainer(const ModelConfig& config, ParameterSet& params, const ops::Context& ctx, const TrainerOptions& options,
          Communicator& comm);

  // One optimizer step over this rank's micro-batches (gradient_accumulation_steps of them).
  StepResult step(const std::vector<const TrainInputs*>& micro_batches);

  int64_t global_step() const { return global_step_; }
  const std::vector<OptimizerGroup>& groups() const { return groups_; }
  const AdamW& optimizer() const { return adamw_; }

  // The state a resumed run needs, beside the data cursor: float32 masters, AdamW moments and steps, the global
  // step. DIR/train_state.safetensors (tensors by parameter name, "<name>.exp_avg", "<name>.exp_avg_sq"; metadata
  // global_step and per-parameter steps), written to a temporary name and renamed.
  void save_state(const std::string& dir) const;
  // Throws Error naming the file and tensor when the state does not fit this parameter set.
  void load_state(const std::string& dir);

 private:
  std::vector<GradSpan> grad_spans() const;

  ParameterSet& params_;
  TrainerOptions options_;
  Communicator& comm_;
  ops::Context ctx_;
  ModelTrainer model_;
  std::vector<OptimizerGroup> groups_;
  AdamW adamw_;
  int64_t global_step_ = 0;
};

}  // namespace qwen3vl
