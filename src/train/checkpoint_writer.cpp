#include "train/checkpoint_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "core/error.h"
#include "train/model_tensors.h"

namespace qwen3vl {
namespace {

namespace fs = std::filesystem;

const char* const kPeftPrefix = "base_model.model.";
const char* const kEmbedTokens = "model.language_model.embed_tokens.weight";
const char* const kPeftVersion = "0.21.2";  // the version whose LoraConfig fields and key names are written

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Fills PATH through a temporary sibling renamed over it: a reader (or a crash) sees the old file or the new one.
void replace_file(const fs::path& path, const std::function<void(const std::string& tmp)>& write) {
  const fs::path tmp = path.parent_path() / ("." + path.filename().string() + ".tmp-" + std::to_string(::getpid()));
  std::error_code ignored;
  try {
    write(tmp.string());
  } catch (...) {
    fs::remove(tmp, ignored);
    throw;
  }
  std::error_code error;
  fs::rename(tmp, path, error);
  if (error) {
    fs::remove(tmp, ignored);
    throw_error(path.string(), ": cannot rename ", tmp.string(), " to it: ", error.message());
  }
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw_error(path, ": cannot create");
  out << text;
  out.flush();
  if (!out) throw_error(path, ": write failed (disk full?)");
}

void make_dir(const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error || !fs::is_directory(dir)) throw_error(dir.string(), ": cannot create the directory: ", error.message());
}

// A Python number as json.dumps writes it: an int stays an int (lora_alpha=16), a float keeps its ".0".
nlohmann::json python_number(double value, bool is_int) {
  if (is_int) return static_cast<int64_t>(std::llround(value));
  return value;
}

bool is_integral(double value) { return std::isfinite(value) && value == std::floor(value) && std::abs(value) < 1e15; }

std::vector<std::string> sorted(std::vector<std::string> values) {
  std::sort(values.begin(), values.end());
  return values;
}

bool is_fused_experts(const std::string& name) {
  return ends_with(name, ".mlp.experts.gate_up_proj") || ends_with(name, ".mlp.experts.down_proj");
}

// Whether `module` is a modules_to_save entry or lies inside one.
bool saved_whole(const std::vector<std::string>& modules_to_save, const std::string& module) {
  for (const std::string& m : modules_to_save)
    if (module == m || starts_with(module, m + ".")) return true;
  return false;
}

}  // namespace

std::string peft_adapter_config_json(const ModuleSelection& selection, const ModelConfig& config,
                                     const std::string& base_model_name_or_path) {
  const LoraSpec& lora = selection.lora;
  nlohmann::json rank_pattern = nlohmann::json::object(), alpha_pattern = nlohmann::json::object();
  for (const auto& [key, r] : lora.rank_pattern) rank_pattern[key] = r;
  for (const auto& [key, alpha] : lora.alpha_pattern) alpha_pattern[key] = python_number(alpha, is_integral(alpha));
  // PEFT ties lm_head's copy to the trained embed_tokens only when asked (tuners_utils.py
  // _check_tied_modules / _add_modules_to_save_to_tie); our run trains them as one tensor.
  bool embeddings_saved = false;
  for (const std::string& m : selection.modules_to_save) embeddings_saved |= m + ".weight" == kEmbedTokens;
  const nlohmann::json null;
  // Every field of LoraConfig / PeftConfig 0.21.2 as dataclasses.asdict gives them for a LORA CAUSAL_LM config
  // built from these arguments, at PEFT's defaults otherwise.
  const nlohmann::json out = {
      {"alora_invocation_tokens", null},
      {"alpha_pattern", alpha_pattern},
      {"arrow_config", null},
      {"auto_mapping", null},
      {"base_model_name_or_path", base_model_name_or_path.empty() ? null : nlohmann::json(base_model_name_or_path)},
      {"bias", "none"},
      {"corda_config", null},
      {"ensure_weight_tying", config.tie_word_embeddings && embeddings_saved},
      {"eva_config", null},
      {"exclude_modules", null},
      {"fan_in_fan_out", false},
      {"inference_mode", true},  // PeftModel.save_pretrained sets it while saving
      {"init_lora_weights", true},
      {"kasa_config", null},
      {"layer_replication", null},
      {"layers_pattern", null},
      {"layers_to_transform", null},
      {"loftq_config", nlohmann::json::object()},
      {"lora_alpha", python_number(lora.alpha, is_integral(lora.alpha))},
      {"lora_bias", false},
      {"lora_dropout", lora.dropout},
      {"lora_ga_config", null},
      {"megatron_config", null},
      {"megatron_core", "megatron.core"},
      {"modules_to_save",
       selection.modules_to_save.empty() ? null : nlohmann::json(sorted(selection.modules_to_save))},
      {"monteclora_config", null},
      {"peft_type", "LORA"},
      {"peft_version", kPeftVersion},
      {"qalora_group_size", 16},
      {"r", lora.r},
      {"rank_pattern", rank_pattern},
      {"revision", null},
      {"target_modules", sorted(selection.saved_target_modules)},
      {"target_parameters", null},
      {"task_type", "CAUSAL_LM"},
      {"trainable_token_indices", null},
      {"use_bdlora", null},
      {"use_dora", lora.use_dora},
      {"use_qalora", false},
      {"use_rslora", lora.use_rslora},
      {"velora_config", null},
  };
  return out.dump(2, ' ', true);  // json.dumps: ensure_ascii, no newline at the end
}

void write_peft_adapter(const std::string& dir, const ParameterSet& params, const ModelConfig& config,
                        const std::string& base_model_name_or_path) {
  const ModuleSelection& selection = params.selection();
  if (selection.lora_targets.empty())
    throw_error(dir, ": this run trains no LoRA adapter; a fully trained model is saved as a checkpoint");
  std::vector<TensorToWrite> tensors;
  std::vector<std::vector<uint8_t>> buffers;  // the encoded modules_to_save tensors
  buffers.reserve(params.parameters().size());
  for (const Parameter& p : params.parameters()) {
    if (p.kind != ParamKind::Full) {  // the name is PEFT's saved key already
      tensors.push_back({p.name, "F32", p.shape, p.value, static_cast<uint64_t>(p.numel) * 4, false});
      continue;
    }
    if (is_fused_experts(p.name))
      throw_error(dir, ": ", p.name, " (fused MoE experts trained fully) cannot be saved in a PEFT adapter yet");
    if (!saved_whole(selection.modules_to_save, p.module))
      throw_error(dir, ": ", p.name, " trains fully but lies in no modules_to_save module of the selection");
    buffers.push_back(encode_floats(p.value, static_cast<size_t>(p.numel), p.dtype));
    tensors.push_back({kPeftPrefix + p.name, dtype_name(p.dtype), p.shape, buffers.back().data(),
                       buffers.back().size(), false});
    // ensure_weight_tying makes lm_head a modules_to_save copy tied to embed_tokens' (tuners_utils.py
    // _add_modules_to_save_to_tie), and PEFT saves and expects both keys.
    if (config.tie_word_embeddings && p.name == kEmbedTokens)
      tensors.push_back({std::string(kPeftPrefix) + "lm_head.weight", dtype_name(p.dtype), p.shape,
                         buffers.back().data(), buffers.back().size(), false});
  }
  make_dir(dir);
  const fs::path folder(dir);
  replace_file(folder / "adapter_model.safetensors",
               [&](const std::string& tmp) { write_safetensors(tmp, tensors, {{"format", "pt"}}); });
  const std::string text = peft_adapter_config_json(selection, config, base_model_name_or_path);
  replace_file(folder / "adapter_config.json", [&](const std::string& tmp) { write_text(tmp, text); });
}

namespace {

// One tensor of the written checkpoint: its stored view, and the master when it trained.
struct OutputTensor {
  std::string name;  // checkpoint name
  const TensorView* stored = nullptr;
  const Parameter* trained = nullptr;
  uint64_t bytes() const { return stored->bytes; }  // a master is written in the stored dtype: the same size
};

// The checkpoint's tensors in named_parameters() order (what save_pretrained shards by), then any the model does
// not read (in name order), each bound to its master when it trained.
std::vector<OutputTensor> output_tensors(const LoadedModel& base, const ParameterSet& params) {
  std::map<std::string, const Parameter*> trained;  // by checkpoint name
  for (const Parameter& p : params.parameters()) {
    const std::string name = checkpoint_tensor_name(base.text_weights, base.vision_weights, p.name);
    if (!base.tensors.contains(name))
      throw_error(base.tensors.description(), ": has no tensor ", name, " for the trained ", p.name);
    trained[name] = &p;
  }
  TextWeights text = base.text_weights;
  VisionWeights vision = base.vision_weights;
  std::vector<std::string> order;
  for (const ModelTensor& t : model_tensors(base.config, text, vision)) {
    const std::string name = checkpoint_tensor_name(base.text_weights, base.vision_weights, t.name);
    if (!t.tied_alias && base.tensors.contains(name)) order.push_back(name);
  }
  const std::set<std::string> listed(order.begin(), order.end());
  for (const std::string& name : base.tensors.names())
    if (!listed.count(name)) order.push_back(name);
  std::vector<OutputTensor> out;
  for (const std::string& name : order) {
    const TensorView& view = base.tensors.get(name);
    if (!is_float_dtype(view.dtype))
      throw_error(view.file, ": tensor ", name, " is stored as ", dtype_name(view.dtype), "; a quantized checkpoint "
                  "cannot be written as a Hugging Face checkpoint (train from the published weights)");
    const auto found = trained.find(name);
    out.push_back({name, &view, found == trained.end() ? nullptr : found->second});
  }
  return out;
}

// split_state_dict_into_shards_factory: in order, a new shard when the next tensor would overflow the current one;
// a tensor bigger than the limit gets a shard of its own.
std::vector<std::vector<const OutputTensor*>> split_shards(const std::vector<OutputTensor>& tensors,
                                                           uint64_t max_shard_bytes) {
  std::vector<std::vector<const OutputTensor*>> shards;
  std::vector<const OutputTensor*> current;
  uint64_t current_bytes = 0;
  for (const OutputTensor& t : tensors) {
    if (t.bytes() > max_shard_bytes) {
      shards.push_back({&t});
      continue;
    }
    if (current_bytes + t.bytes() > max_shard_bytes) {
      shards.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current.push_back(&t);
    current_bytes += t.bytes();
  }
  if (!current.empty()) shards.push_back(std::move(current));
  return shards;
}

std::string shard_name(size_t index, size_t count) {
  if (count == 1) return "model.safetensors";
  char name[64];
  std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", index + 1, count);
  return name;
}

void write_shard(const fs::path& path, const std::vector<const OutputTensor*>& shard) {
  std::vector<TensorToWrite> tensors;
  std::vector<std::vector<uint8_t>> buffers;
  buffers.reserve(shard.size());
  for (const OutputTensor* t : shard) {
    const TensorView& v = *t->stored;
    if (!t->trained) {  // frozen: the stored bytes (the mapping stays resident: training may go on reading it)
      tensors.push_back({t->name, dtype_name(v.dtype), v.shape, v.data, v.bytes, false});
      continue;
    }
    buffers.push_back(encode_floats(t->trained->value, static_cast<size_t>(t->trained->numel), v.dtype));
    tensors.push_back({t->name, dtype_name(v.dtype), v.shape, buffers.back().data(), buffers.back().size(), false});
  }
  replace_file(path, [&](const std::string& tmp) { write_safetensors(tmp, tensors, {{"format", "pt"}}); });
}

bool is_weight_file(const std::string& file) {
  static const std::regex shard(R"(model-\d{5}-of-\d{5}\.safetensors)");
  return file == "model.safetensors" || file == "model.safetensors.index.json" || std::regex_match(file, shard);
}

// Weight files left by an earlier save into the same folder that this one did not write.
void remove_stale_weights(const fs::path& dir, const std::set<std::string>& written) {
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string file = entry.path().filename().string();
    if (entry.is_regular_file() && is_weight_file(file) && !written.count(file)) fs::remove(entry.path());
  }
}

// Every regular file of the base folder but its weights: config, generation config, tokenizer, processor, template.
// A base that is itself a finetune output also holds that run's log and resumable state, which are not part of the
// checkpoint (copying them would overwrite the new run's log).
bool is_training_artefact(const std::string& file) {
  return file == "train_log.jsonl" || file == "run.json" || file == "train_state.json";
}

void copy_non_weight_files(const fs::path& from, const fs::path& to) {
  for (const fs::directory_entry& entry : fs::directory_iterator(from)) {
    const std::string file = entry.path().filename().string();
    if (!entry.is_regular_file() || entry.path().extension() == ".safetensors" ||
        file == "model.safetensors.index.json" || is_training_artefact(file))
      continue;
    replace_file(to / file, [&](const std::string& tmp) { fs::copy_file(entry.path(), tmp); });
  }
}

}  // namespace

void write_hf_checkpoint(const std::string& out_dir, const LoadedModel& base, const ParameterSet& params,
                         const HfCheckpointOptions& options) {
  if (!params.selection().lora_targets.empty())
    throw_error(out_dir, ": this run trains LoRA adapters; save them as a PEFT adapter and merge them into the base "
                "with `qwen3vl merge-lora`");
  const std::vector<OutputTensor> tensors = output_tensors(base, params);
  const auto shards = split_shards(tensors, std::max<uint64_t>(options.max_shard_bytes, 1));
  const fs::path folder(out_dir);
  make_dir(folder);
  std::error_code error;
  if (fs::equivalent(folder, base.dir, error))
    throw_error(out_dir, ": is the base checkpoint's folder; write the trained checkpoint elsewhere");

  std::set<std::string> written;
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total_size = 0, total_parameters = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string file = shard_name(i, shards.size());
    write_shard(folder / file, shards[i]);
    written.insert(file);
    for (const OutputTensor* t : shards[i]) {
      weight_map[t->name] = file;
      total_size += t->bytes();
      total_parameters += static_cast<uint64_t>(t->stored->numel());
    }
  }
  if (shards.size() > 1) {  // modeling_utils.py save_pretrained's index, json.dumps(indent=2, sort_keys=True) + "\n"
    const nlohmann::json index = {
        {"metadata", {{"total_parameters", total_parameters}, {"total_size", total_size}}},
        {"weight_map", weight_map}};
    const std::string text = index.dump(2, ' ', true) + "\n";
    replace_file(folder / "model.safetensors.index.json", [&](const std::string& tmp) { write_text(tmp, text); });
    written.insert("model.safetensors.index.json");
  }
  remove_stale_weights(folder, written);
  copy_non_weight_files(base.dir, folder);
}

}  // namespace qwen3vl
