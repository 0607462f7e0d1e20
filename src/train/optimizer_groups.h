// The AdamW parameter groups of qwen-vl-finetune (Qwen3-VL repository, qwen-vl-finetune/qwenvl/train/trainer.py,
// create_optimizer, monkey-patched onto transformers' Trainer):
//   decay     = transformers' decay rule (train/module_selection.h transformers_decays) minus names containing "bias"
//   projector = names containing "merger" (model.visual.merger and model.visual.deepstack_merger_list), only when
//               mm_projector_lr is set and not 0
//   vision    = names containing "visual" minus the projector, only when vision_tower_lr is set as well
//   groups, in its order: decay rest, decay vision, no-decay rest, no-decay vision, decay projector, no-decay
//   projector (those of the parts not split off are absent); rest at the base lr, vision at vision_tower_lr,
//   projector at mm_projector_lr; weight_decay on the decay groups, 0 on the others.
// LoRA factors carry their PEFT key ("base_model.model.model.visual.merger.linear_fc1.lora_A.weight"), so the same
// substring rules place them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "train/adamw.h"
#include "train/parameters.h"

namespace qwen3vl {

struct OptimizerSettings {
  double learning_rate = 5e-5;  // TrainingArguments.learning_rate's default
  std::optional<double> mm_projector_lr;
  std::optional<double> vision_tower_lr;  // ignored unless mm_projector_lr is set, as in create_optimizer
  double weight_decay = 0.0;              // TrainingArguments.weight_decay's default
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

struct OptimizerGroup {
  std::string name;  // "decay", "decay_vision", "no_decay", "no_decay_vision", "decay_projector", ...
  double base_lr = 0.0;  // the lr the schedule scales
  std::vector<size_t> parameters;  // indices into ParameterSet::parameters()
};

// The groups above, each with its members in parameters() order. Groups that exist in create_optimizer but get no
// member are kept (torch keeps empty param groups too), so group indices are stable across modes.
std::vector<OptimizerGroup> optimizer_groups(const ParameterSet& params, const OptimizerSettings& settings);

// An AdamW over `params` with those groups (group i of the optimizer = group i of `groups`).
AdamW make_adamw(ParameterSet& params, const std::vector<OptimizerGroup>& groups, const OptimizerSettings& settings);

}  // namespace qwen3vl
