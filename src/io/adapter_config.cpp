#include "io/adapter_config.h"

#include <cmath>
#include <regex>

#include "core/error.h"
#include "io/json_fields.h"

namespace qwen3vl {
namespace {

template <typename Value>
std::map<std::string, Value> read_pattern(const FieldReader& reader, const char* key, bool integer) {
  std::map<std::string, Value> pattern;
  if (!reader.has(key)) return pattern;
  const nlohmann::json& value = reader.object(key);
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (integer ? !it->is_number_integer() || it->get<int64_t>() <= 0 : !it->is_number())
      reader.fail(key, integer ? "must map module patterns to positive integers" : "must map module patterns to numbers");
    try {
      std::regex check(it.key());
    } catch (const std::regex_error&) {
      reader.fail(key, ("has a key that is not a regular expression: \"" + it.key() + "\"").c_str());
    }
    pattern[it.key()] = it->get<Value>();
  }
  return pattern;
}

// get_pattern_key: the first key whose regex matches the end of the path on a '.' boundary. PEFT tries the keys in
// the file's order; they come sorted here (overlapping keys would be the adapter maker's mistake either way).
template <typename Value>
const Value* find_pattern(const std::map<std::string, Value>& pattern, const std::string& path) {
  for (const auto& [key, value] : pattern)
    if (std::regex_match(path, std::regex("(.*\\.)?(" + key + ")"))) return &value;
  return nullptr;
}

}  // namespace

AdapterConfig read_adapter_config(const std::string& dir) {
  AdapterConfig config;
  config.file = dir + "/adapter_config.json";
  const nlohmann::json json = read_json_file(config.file);
  const FieldReader reader(config.file, json, "");
  const std::string type = reader.string_or("peft_type", "");
  if (type.empty()) reader.fail("peft_type", "is missing");
  if (type != "LORA") reader.fail("peft_type", ("is \"" + type + "\"; only LORA adapters are supported").c_str());
  config.base_model_name_or_path = reader.string_or("base_model_name_or_path", "");
  config.r = reader.integer_or("r", config.r);
  if (config.r <= 0) reader.fail("r", "must be positive");
  config.lora_alpha = reader.number_or("lora_alpha", config.lora_alpha);
  config.use_rslora = reader.boolean_or("use_rslora", false);
  config.use_dora = reader.boolean_or("use_dora", false);
  config.lora_bias = reader.boolean_or("lora_bias", false);
  config.bias = reader.string_or("bias", "none");
  if (config.bias != "none" && config.bias != "all" && config.bias != "lora_only")
    reader.fail("bias", "must be \"none\", \"all\" or \"lora_only\"");
  if (reader.boolean_or("fan_in_fan_out", false))
    reader.fail("fan_in_fan_out", "is true, which only GPT-2 style Conv1D layers use; Qwen3-VL has none");
  if (reader.has("target_parameters") && !(json["target_parameters"].is_array() && json["target_parameters"].empty()))
    reader.fail("target_parameters", "(LoRA on fused MoE expert tensors) is not supported");
  if (reader.has("modules_to_save")) {
    const nlohmann::json& modules = json["modules_to_save"];
    if (!modules.is_array()) reader.fail("modules_to_save", "must be a list of module names");
    for (const nlohmann::json& name : modules) {
      if (!name.is_string()) reader.fail("modules_to_save", "must hold strings only");
      config.modules_to_save.push_back(name.get<std::string>());
    }
  }
  config.rank_pattern = read_pattern<int64_t>(reader, "rank_pattern", true);
  config.alpha_pattern = read_pattern<double>(reader, "alpha_pattern", false);
  return config;
}

int64_t adapter_rank(const AdapterConfig& config, const std::string& module_path) {
  const int64_t* r = find_pattern(config.rank_pattern, module_path);
  return r ? *r : config.r;
}

double adapter_scaling(const AdapterConfig& config, const std::string& module_path) {
  const double* alpha = find_pattern(config.alpha_pattern, module_path);
  const double a = alpha ? *alpha : config.lora_alpha;
  const double r = static_cast<double>(adapter_rank(config, module_path));
  return config.use_rslora ? a / std::sqrt(r) : a / r;
}

}  // namespace qwen3vl
