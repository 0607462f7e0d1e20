// What a fine-tuning run trains: whole parts of the model (full fine-tuning) chosen with qwen-vl-finetune's flags,
// LoRA / rsLoRA / DoRA adapters on chosen linear modules, or both at once (mixed).
//
// Parts (model_tensors.h ParamGroup) go by exact HF path prefixes. train_qwen.py set_model decides them by
// module: tune_mm_vision toggles all of model.visual (deepstack mergers included), tune_mm_mlp then model.visual.merger,
// tune_mm_llm model.language_model. Here:
//   tune_mm_llm     model.language_model.* and lm_head. (set_model writes `model.lm_head.requires_grad`, a plain
//                   attribute of the module, so an untied lm_head.weight trains there even with tune_mm_llm False;
//                   here lm_head follows the flag.)
//   tune_mm_mlp     model.visual.merger.*
//   tune_deepstack  model.visual.deepstack_merger_list.*; when not given it follows tune_mm_vision, as set_model
//                   does
//   tune_mm_vision  the rest of model.visual.* (patch_embed, pos_embed, blocks)
//
// LoRA: targets are matched against module paths as PEFT's list form does (peft/tuners/tuners_utils.py
// check_target_module_exists: the path equals the target or ends with "." + target); "all-linear" is every
// nn.Linear except the output embedding lm_head (_maybe_include_all_linear_layers): the Conv3d patch_embed.proj is
// not included, though a target naming it ("patch_embed.proj") adapts it as PEFT's Conv3d LoRA does. A target
// that matches a module PEFT cannot adapt (a norm, an embedding, a container such as "mlp", the MoE router, which
// transformers 5.23 keeps as a raw nn.Parameter, or the fused MoE experts) or matches nothing is an error, as in
// PEFT. So on MoE checkpoints LoRA goes on attention (and the vision tower); the experts train fully or not at all.
//
// Mixed modes: train_qwen.py skips set_model when lora_enable is set, so there the tune_mm_* flags are ignored and
// only the adapters train. Here the flags are honoured with LoRA: a part they select trains fully and is saved in
// the adapter as modules_to_save, and LoRA targets inside it are dropped, as PEFT drops targets under
// modules_to_save. The official LoRA run is LoRA with every tune flag off.
//
// Weight decay follows transformers 5.23 Trainer.get_decay_parameter_names (trainer.py, with trainer_pt_utils.py
// get_parameter_names): no decay for parameters inside an nn.LayerNorm and for names matching "bias", "layernorm",
// "rmsnorm", r"(?:^|\.)norm(?:$|\.)" or r"_norm(?:$|\.)" (lower-cased): biases, input_layernorm,
// post_attention_layernorm, q_norm, k_norm, the final norm, vision norm1 / norm2 and merger norms. Everything else
// decays: embeddings, pos_embed, lm_head, the router, the experts, LoRA factors and DoRA magnitudes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/adapter_config.h"
#include "train/model_tensors.h"

namespace qwen3vl {

struct TuneFlags {
  bool tune_mm_llm = false;
  bool tune_mm_mlp = false;
  bool tune_mm_vision = false;
  std::optional<bool> tune_deepstack;  // unset: follows tune_mm_vision

  bool trains_fully(ParamGroup group) const;
};

struct LoraSpec {
  std::vector<std::string> target_modules;  // empty: no LoRA; {"all-linear"}; else module names (PEFT list form)
  int64_t r = 8;
  double alpha = 8.0;
  double dropout = 0.0;  // lora_dropout as written to adapter_config.json
  bool use_rslora = false;  // scaling alpha / sqrt(r) instead of alpha / r
  bool use_dora = false;
  // Per-module overrides, PEFT's rank_pattern / alpha_pattern (regex keys matched against the end of the path).
  std::map<std::string, int64_t> rank_pattern;
  std::map<std::string, double> alpha_pattern;

  bool enabled() const { return !target_modules.empty(); }
  bool all_linear() const;  // target_modules is the single (case-insensitive) "all-linear"
  AdapterConfig adapter_config() const;  // r, alpha, rslora, dora and patterns, for adapter_rank / adapter_scaling
};

enum class ParamKind { Full, LoraA, LoraB, LoraMagnitude };

// One adapted module.
struct LoraTarget {
  std::string module;   // HF module path, e.g. model.language_model.layers.0.self_attn.q_proj
  size_t tensor = 0;    // index in model_tensors() of the weight it adapts
  int64_t rank = 0;
  double alpha = 0.0;
  double scaling = 0.0;  // alpha / r or alpha / sqrt(r) (a Python float in PEFT; torch applies it as float32)
};

struct SelectedParameter {
  // Full: the HF tensor name. LoRA: the PEFT key, "base_model.model." + module + ".lora_A.weight" / ".lora_B.weight"
  // / ".lora_magnitude_vector".
  std::string name;
  std::string module;  // the HF module path it belongs to
  ParamKind kind = ParamKind::Full;
  ParamGroup group = ParamGroup::LanguageModel;
  bool weight_decay = true;
  // Full: as the checkpoint stores it. LoRA on a Linear: A [r, in], B [out, r], magnitude [out]; on the Conv3d,
  // PEFT's conv shapes A [r, C, T, P, P], B [D, r, 1, 1, 1], magnitude [1, D, 1, 1, 1].
  std::vector<int64_t> shape;
  size_t tensor = 0;        // index in model_tensors(): the tensor trained (Full) or the weight adapted (LoRA)
  int64_t lora_target = -1; // LoRA: index in ModuleSelection::lora_targets

  int64_t numel() const;
};

struct ModuleSelection {
  TuneFlags tune;
  LoraSpec lora;
  // Every trainable tensor, in named_parameters() order of the (PEFT-wrapped) model: the order of the optimizer,
  // clipping, checkpoints and the data-parallel all-reduce.
  std::vector<SelectedParameter> parameters;
  std::vector<LoraTarget> lora_targets;  // in model order
  // With LoRA: the fully trained parts as PEFT modules_to_save entries (full module paths): lm_head,
  // model.language_model.embed_tokens, model.language_model.layers.{l}, model.language_model.norm,
  // model.visual.patch_embed, model.visual.pos_embed, model.visual.blocks.{i}, model.visual.merger,
  // model.visual.deepstack_merger_list.{k}. Empty without LoRA.
  std::vector<std::string> modules_to_save;
  // target_modules for adapter_config.json: the targets as given, sorted; for "all-linear" the expanded set reduced
  // to the shortest distinguishing suffixes, as PEFT saves it (tuners_utils.py _find_minimal_target_modules).
  std::vector<std::string> saved_target_modules;
};

// Throws Error naming the flag or target at fault: nothing to train, a bad LoRA spec, a target matching no module
// or one PEFT cannot adapt, or every target inside a fully trained part.
ModuleSelection select_modules(const std::vector<ModelTensor>& tensors, const TuneFlags& tune, const LoraSpec& lora);
ModuleSelection select_modules(const ModelConfig& config, const TextWeights& text, const VisionWeights& vision,
                               const TuneFlags& tune, const LoraSpec& lora);

// transformers' weight-decay rule above, for a parameter name (HF or PEFT) and whether an nn.LayerNorm owns it.
bool transformers_decays(const std::string& name, bool in_layer_norm);

// PEFT's _find_minimal_target_modules: for each target path (in the order of their reversed suffix lists) the
// shortest dot-suffix not shared with any of `others`, unless one already chosen covers it.
std::vector<std::string> minimal_target_suffixes(const std::vector<std::string>& targets,
                                                 const std::vector<std::string>& others);

}  // namespace qwen3vl
