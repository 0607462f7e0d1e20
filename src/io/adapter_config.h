// adapter_config.json of a PEFT LoRA adapter (peft/tuners/lora/config.py LoraConfig, peft/config.py), the fields
// that change what the adapter computes. Fields that only matter for training (lora_dropout, init_lora_weights,
// task_type, inference_mode, ...) are read by nobody here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace qwen3vl {

struct AdapterConfig {
  std::string file;                     // the adapter_config.json path, for errors
  std::string base_model_name_or_path;  // may be empty
  int64_t r = 8;
  double lora_alpha = 8.0;
  bool use_rslora = false;              // scaling lora_alpha / sqrt(r) instead of lora_alpha / r
  bool use_dora = false;
  bool lora_bias = false;               // a bias on lora_B
  std::string bias = "none";            // "none", "all" or "lora_only": which base biases the adapter saved
  std::vector<std::string> modules_to_save;
  // Per-module overrides; keys are regular expressions matched against the end of the module path
  // (peft/utils/other.py get_pattern_key: re.match(rf"(.*\.)?({key})$", path)).
  std::map<std::string, int64_t> rank_pattern;
  std::map<std::string, double> alpha_pattern;
};

// Reads DIR/adapter_config.json. Throws Error naming the file and field for what the engine cannot run: a
// peft_type other than LORA, fan_in_fan_out (Conv1D models only), target_parameters (LoRA on the fused MoE expert
// tensors). target_modules, exclude_modules and layers_to_transform only chose the targets when the adapter was
// made; the tensors in adapter_model.safetensors say which modules it has.
AdapterConfig read_adapter_config(const std::string& dir);

// PEFT's scaling of one module: alpha / r, or alpha / sqrt(r) with use_rslora (peft/tuners/lora/layer.py
// update_layer), with r and alpha from rank_pattern / alpha_pattern where a key matches `module_path`.
int64_t adapter_rank(const AdapterConfig& config, const std::string& module_path);
double adapter_scaling(const AdapterConfig& config, const std::string& module_path);

}  // namespace qwen3vl
