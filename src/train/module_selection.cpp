#include "train/module_selection.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <regex>
#include <set>

#include "core/error.h"

namespace qwen3vl {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

bool is_number(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::vector<std::string> split_dots(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

// The modules_to_save entry a tensor belongs to: lm_head, or the part's root plus its first module and, for the
// ModuleLists (layers, blocks, deepstack_merger_list), the index. Whole decoder layers and vision blocks are saved,
// not the ModuleLists, since a ModulesToSaveWrapper must stay callable where the model calls the module.
std::string save_unit(const std::string& name) {
  for (const std::string root : {"model.language_model.", "model.visual."}) {
    if (!starts_with(name, root)) continue;
    const std::vector<std::string> parts = split_dots(name.substr(root.size()));
    std::string unit = root + parts[0];
    if (parts.size() > 2 && is_number(parts[1])) unit += "." + parts[1];
    return unit;
  }
  return split_dots(name)[0];  // lm_head
}

// PEFT's list-form match.
bool target_matches(const std::string& module, const std::string& target) {
  return module == target || ends_with(module, "." + target);
}

bool is_all_linear(std::string target) {
  std::transform(target.begin(), target.end(), target.begin(), [](unsigned char c) { return std::tolower(c); });
  return target == "all-linear";  // PEFT compares it lower-cased
}

bool adaptable(const ModelTensor& t) { return t.kind == TensorKind::Linear || t.kind == TensorKind::Conv3d; }

std::string why_not_adaptable(const ModelTensor* t) {
  if (!t) return "a container of other modules";
  switch (t->kind) {
    case TensorKind::Router:
      return "the MoE router, an nn.Parameter of Qwen3VLMoeTextTopKRouter in transformers 5.23 (no nn.Linear)";
    case TensorKind::Experts: return "the fused MoE experts (train them fully with the language model instead)";
    case TensorKind::Embedding: return "an embedding (train it fully instead)";
    default: return "a norm (train it fully instead)";
  }
}

void check_lora_spec(const LoraSpec& lora) {
  if (lora.r <= 0) throw_error("LoRA rank r must be positive (got ", lora.r, ")");
  if (!std::isfinite(lora.alpha)) throw_error("LoRA alpha must be a finite number");
  if (lora.dropout < 0.0 || lora.dropout >= 1.0) throw_error("LoRA dropout must be in [0, 1) (got ", lora.dropout, ")");
  for (const auto& [key, rank] : lora.rank_pattern)
    if (rank <= 0) throw_error("LoRA rank_pattern \"", key, "\" must map to a positive rank (got ", rank, ")");
  for (const std::string& target : lora.target_modules) {
    if (target.empty()) throw_error("LoRA target_modules holds an empty name");
    if (lora.target_modules.size() > 1 && is_all_linear(target))
      throw_error("LoRA target \"all-linear\" cannot be combined with other targets");
  }
}

// Every module path: each tensor's module and all its dot-prefixes (containers), with the tensor owning the module's
// weight where there is one.
std::map<std::string, const ModelTensor*> module_table(const std::vector<ModelTensor>& tensors) {
  std::map<std::string, const ModelTensor*> modules;
  for (const ModelTensor& t : tensors) {
    const bool owns_module = t.kind != TensorKind::Bias;
    const ModelTensor*& slot = modules[t.module];
    if (owns_module) slot = &t;
    for (size_t dot = t.module.find('.'); dot != std::string::npos; dot = t.module.find('.', dot + 1))
      modules.emplace(t.module.substr(0, dot), nullptr);
  }
  return modules;
}

class Selector {
 public:
  Selector(const std::vector<ModelTensor>& tensors, const TuneFlags& tune, const LoraSpec& lora)
      : tensors_(tensors), modules_(module_table(tensors)) {
    out_.tune = tune;
    out_.lora = lora;
    for (const ModelTensor& t : tensors) {
      if (!tune.trains_fully(t.group)) continue;
      const std::string unit = save_unit(t.name);
      // The tied lm_head is no parameter: it trains with embed_tokens and is no modules_to_save entry of its own.
      if (!t.tied_alias && !full_units_.count(unit)) full_unit_order_.push_back(unit);
      full_units_.insert(unit);
    }
  }

  ModuleSelection run() {
    if (out_.lora.enabled()) {
      check_lora_spec(out_.lora);
      choose_lora_targets();
    }
    for (size_t i = 0; i < tensors_.size(); ++i) add_parameters(i);
    if (out_.parameters.empty())
      throw_error("nothing to train: no tune_mm_llm / tune_mm_mlp / tune_mm_vision / tune_deepstack part and no "
                  "LoRA target");
    if (out_.lora.enabled()) {
      out_.modules_to_save = full_unit_order_;
      out_.saved_target_modules = saved_targets();
    }
    return std::move(out_);
  }

 private:
  // A module under a fully trained part: PEFT never adapts modules under modules_to_save.
  bool trains_fully(const std::string& module) const {
    for (const std::string& unit : full_units_)
      if (module == unit || starts_with(module, unit + ".")) return true;
    return false;
  }

  void choose_lora_targets() {
    const AdapterConfig config = out_.lora.adapter_config();
    std::set<std::string> chosen;
    if (out_.lora.all_linear()) {
      for (const ModelTensor& t : tensors_)
        if (t.kind == TensorKind::Linear && t.module != "lm_head" && !trains_fully(t.module)) chosen.insert(t.module);
    } else {
      for (const std::string& target : out_.lora.target_modules) {
        bool matched = false;
        for (const auto& [module, tensor] : modules_) {
          if (!target_matches(module, target)) continue;
          matched = true;
          if (trains_fully(module)) continue;
          if (!tensor || !adaptable(*tensor))
            throw_error("LoRA target \"", target, "\" matches ", module, ", which LoRA cannot adapt: it is ",
                        why_not_adaptable(tensor));
          chosen.insert(module);
        }
        if (!matched) throw_error("LoRA target \"", target, "\" matches no module of the model");
      }
    }
    if (chosen.empty())
      throw_error("every LoRA target lies in a part that trains fully (tune_mm_* flags): nothing left to adapt");
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const ModelTensor& t = tensors_[i];
      if (!adaptable(t) || !chosen.count(t.module)) continue;
      LoraTarget target;
      target.module = t.module;
      target.tensor = i;
      target.rank = adapter_rank(config, t.module);
      target.scaling = adapter_scaling(config, t.module);
      target.alpha = target.scaling * (out_.lora.use_rslora ? std::sqrt(static_cast<double>(target.rank))
                                                            : static_cast<double>(target.rank));
      target_of_tensor_[i] = out_.lora_targets.size();
      out_.lora_targets.push_back(target);
    }
  }

  void add_parameters(size_t i) {
    const ModelTensor& t = tensors_[i];
    if (!t.tied_alias && out_.tune.trains_fully(t.group)) {
      add(t.name, t, ParamKind::Full, t.shape, i, -1, transformers_decays(t.name, t.in_layer_norm));
      return;
    }
    const auto target = target_of_tensor_.find(i);
    if (target == target_of_tensor_.end()) return;
    const LoraTarget& lora = out_.lora_targets[target->second];
    const int64_t r = lora.rank, out = t.matrix->rows, in = t.matrix->cols;
    const bool conv = t.kind == TensorKind::Conv3d;
    const std::string key = "base_model.model." + t.module;
    const auto index = static_cast<int64_t>(target->second);
    std::vector<int64_t> a_shape = {r, in}, b_shape = {out, r}, m_shape = {out};
    if (conv) {
      a_shape = t.shape;
      a_shape[0] = r;
      b_shape = {out, r, 1, 1, 1};
      m_shape = {1, out, 1, 1, 1};
    }
    add(key + ".lora_A.weight", t, ParamKind::LoraA, a_shape, i, index, true);
    add(key + ".lora_B.weight", t, ParamKind::LoraB, b_shape, i, index, true);
    if (out_.lora.use_dora) add(key + ".lora_magnitude_vector", t, ParamKind::LoraMagnitude, m_shape, i, index, true);
  }

  void add(const std::string& name, const ModelTensor& t, ParamKind kind, std::vector<int64_t> shape, size_t tensor,
           int64_t lora_target, bool decay) {
    SelectedParameter p;
    p.name = name;
    p.module = t.module;
    p.kind = kind;
    p.group = t.group;
    p.weight_decay = decay;
    p.shape = std::move(shape);
    p.tensor = tensor;
    p.lora_target = lora_target;
    out_.parameters.push_back(std::move(p));
  }

  std::vector<std::string> saved_targets() const {
    if (!out_.lora.all_linear()) {
      const std::set<std::string> unique(out_.lora.target_modules.begin(), out_.lora.target_modules.end());
      return {unique.begin(), unique.end()};
    }
    // PEFT expands "all-linear" before it applies modules_to_save, so fully trained linears are in the set too.
    std::vector<std::string> targets, others;
    for (const auto& [module, tensor] : modules_) {
      const bool linear = tensor && tensor->kind == TensorKind::Linear && module != "lm_head";
      (linear ? targets : others).push_back(module);
    }
    return minimal_target_suffixes(targets, others);
  }

  const std::vector<ModelTensor>& tensors_;
  const std::map<std::string, const ModelTensor*> modules_;
  std::set<std::string> full_units_;            // modules_to_save units of the fully trained parts
  std::vector<std::string> full_unit_order_;    // the same in model order, without the tied lm_head
  std::map<size_t, size_t> target_of_tensor_;
  ModuleSelection out_;
};

}  // namespace

bool TuneFlags::trains_fully(ParamGroup group) const {
  switch (group) {
    case ParamGroup::LanguageModel: return tune_mm_llm;
    case ParamGroup::Merger: return tune_mm_mlp;
    case ParamGroup::Deepstack: return tune_deepstack.value_or(tune_mm_vision);
    case ParamGroup::VisionTower: return tune_mm_vision;
  }
  return false;
}

bool LoraSpec::all_linear() const { return target_modules.size() == 1 && is_all_linear(target_modules[0]); }

AdapterConfig LoraSpec::adapter_config() const {
  AdapterConfig config;
  config.r = r;
  config.lora_alpha = alpha;
  config.use_rslora = use_rslora;
  config.use_dora = use_dora;
  config.rank_pattern = rank_pattern;
  config.alpha_pattern = alpha_pattern;
  return config;
}

int64_t SelectedParameter::numel() const {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return count;
}

ModuleSelection select_modules(const std::vector<ModelTensor>& tensors, const TuneFlags& tune, const LoraSpec& lora) {
  return Selector(tensors, tune, lora).run();
}

ModuleSelection select_modules(const ModelConfig& config, const TextWeights& text, const VisionWeights& vision,
                               const TuneFlags& tune, const LoraSpec& lora) {
  TextWeights text_copy = text;
  VisionWeights vision_copy = vision;
  return select_modules(model_tensors(config, text_copy, vision_copy), tune, lora);
}

bool transformers_decays(const std::string& name, bool in_layer_norm) {
  if (in_layer_norm) return false;
  static const std::regex forbidden(R"(bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.))");
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return !std::regex_search(lower, forbidden);
}

std::vector<std::string> minimal_target_suffixes(const std::vector<std::string>& targets,
                                                 const std::vector<std::string>& others) {
  // Suffixes of a path, shortest first: "a.b.c" -> "c", "b.c", "a.b.c".
  auto suffixes = [](const std::string& path) {
    const std::vector<std::string> parts = split_dots(path);
    std::vector<std::string> out;
    std::string suffix;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      suffix = suffix.empty() ? *it : *it + "." + suffix;
      out.push_back(suffix);
    }
    return out;
  };
  std::set<std::string> other_suffixes;
  for (const std::string& other : others)
    for (const std::string& s : suffixes(other)) other_suffixes.insert(s);
  std::vector<std::vector<std::string>> ordered;
  for (const std::string& target : std::set<std::string>(targets.begin(), targets.end()))
    ordered.push_back(suffixes(target));
  std::sort(ordered.begin(), ordered.end());
  std::set<std::string> required;
  for (const std::vector<std::string>& target_suffixes : ordered) {
    const std::string& item = target_suffixes.back();
    for (const std::string& suffix : target_suffixes) {
      if (required.count(suffix) || other_suffixes.count(suffix)) continue;
      const bool covered = std::any_of(required.begin(), required.end(),
                                       [&item](const std::string& r) { return ends_with(item, "." + r); });
      if (!covered) required.insert(suffix);
      break;
    }
  }
  if (required.empty()) return {targets.begin(), targets.end()};
  return {required.begin(), required.end()};
}

}  // namespace qwen3vl
