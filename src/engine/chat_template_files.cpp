#include "engine/chat_template_files.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "io/json_fields.h"

namespace qwen3vl {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) throw_error(path, ": cannot read");
  return text.str();
}

std::optional<nlohmann::json> read_json(const std::string& path) {
  if (!fs::exists(path)) return std::nullopt;
  return read_json_file(path);
}

// chat_templates/NAME.jinja beside the config files.
std::map<std::string, std::string> named_template_files(const std::string& dir) {
  std::map<std::string, std::string> files;
  const fs::path folder = fs::path(dir) / "chat_templates";
  std::error_code error;
  if (!fs::is_directory(folder, error)) return files;
  for (const auto& entry : fs::directory_iterator(folder))
    if (entry.is_regular_file() && entry.path().extension() == ".jinja")
      files[entry.path().stem().string()] = entry.path().string();
  return files;
}

// A "chat_template" value: a string, or named templates (an object of strings, or a list of {"name", "template"}),
// of which the one named "default".
std::string template_from_value(const nlohmann::json& value, const std::string& where) {
  if (value.is_string()) return value.get<std::string>();
  std::map<std::string, std::string> named;
  if (value.is_object()) {
    for (const auto& [name, text] : value.items()) {
      if (!text.is_string()) throw_error(where, ".", name, ": expected a template string");
      named[name] = text.get<std::string>();
    }
  } else if (value.is_array()) {
    for (const auto& entry : value) {
      if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() || !entry.contains("template") ||
          !entry["template"].is_string())
        throw_error(where, ": expected a list of {\"name\": ..., \"template\": ...}");
      named[entry["name"].get<std::string>()] = entry["template"].get<std::string>();
    }
  } else {
    throw_error(where, ": expected a template string or named templates");
  }
  const auto it = named.find("default");
  if (it == named.end()) {
    std::string names;
    for (const auto& entry : named) names += (names.empty() ? "" : ", ") + entry.first;
    throw_error(where, ": several chat templates but none named \"default\" (", names, ")");
  }
  return it->second;
}

// chat_template.jinja, or chat_templates/default.jinja among named ones.
std::optional<ChatTemplateText> template_files(const std::string& dir) {
  if (auto text = read_text(dir + "/chat_template.jinja")) return ChatTemplateText{*text, dir + "/chat_template.jinja"};
  const auto named = named_template_files(dir);
  if (named.empty()) return std::nullopt;
  const auto it = named.find("default");
  if (it == named.end())
    throw_error(dir, "/chat_templates: several chat templates but none named \"default\" (no chat_template.jinja)");
  return ChatTemplateText{*read_text(it->second), it->second};
}

}  // namespace

std::optional<ChatTemplateText> find_chat_template(const std::string& dir) {
  const std::string processor_config = dir + "/processor_config.json";
  if (auto json = read_json(processor_config); json && json->contains("chat_template") && !(*json)["chat_template"].is_null())
    return ChatTemplateText{template_from_value((*json)["chat_template"], processor_config + " chat_template"),
                            processor_config + " chat_template"};
  const std::string legacy = dir + "/chat_template.json";
  if (auto json = read_json(legacy)) {
    if (!named_template_files(dir).empty())
      throw_error(legacy, ": a legacy chat_template.json beside a chat_templates/ folder (transformers refuses the "
                          "mix; keep chat_template.jinja and chat_templates/)");
    if (!json->contains("chat_template")) throw_error(legacy, ": no \"chat_template\"");
    return ChatTemplateText{template_from_value((*json)["chat_template"], legacy + " chat_template"), legacy};
  }
  if (auto files = template_files(dir)) return files;
  const std::string tokenizer_config = dir + "/tokenizer_config.json";
  if (auto json = read_json(tokenizer_config); json && json->contains("chat_template") && !(*json)["chat_template"].is_null())
    return ChatTemplateText{template_from_value((*json)["chat_template"], tokenizer_config + " chat_template"),
                            tokenizer_config + " chat_template"};
  return std::nullopt;
}

SpecialTokens read_special_tokens(const std::string& dir) {
  static const char* const kNames[] = {"bos_token", "eos_token",  "unk_token", "sep_token",
                                       "pad_token", "cls_token", "mask_token"};
  std::vector<nlohmann::json> sources;
  for (const char* file : {"/tokenizer_config.json", "/special_tokens_map.json"})
    if (auto json = read_json(dir + file)) sources.push_back(std::move(*json));
  SpecialTokens tokens;
  for (const char* name : kNames) {
    for (const nlohmann::json& source : sources) {
      if (!source.contains(name) || source[name].is_null()) continue;
      const nlohmann::json& value = source[name];
      if (value.is_string()) tokens.emplace_back(name, value.get<std::string>());
      else if (value.is_object() && value.contains("content") && value["content"].is_string())
        tokens.emplace_back(name, value["content"].get<std::string>());
      break;
    }
  }
  return tokens;
}

ChatTemplateRenderer load_chat_template(const std::string& dir, const std::string& override_file) {
  if (!override_file.empty()) {
    const auto text = read_text(override_file);
    if (!text) throw_error(override_file, ": cannot open the chat template file");
    return ChatTemplateRenderer(*text, override_file, read_special_tokens(dir));
  }
  const auto found = find_chat_template(dir);
  if (!found) return ChatTemplateRenderer();
  return ChatTemplateRenderer(found->text, found->source, read_special_tokens(dir));
}

}  // namespace qwen3vl
