// Typed reads of JSON config files (config.json, generation_config.json, adapter_config.json) whose errors name
// `file: section.field`.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace qwen3vl {

// The JSON object in `path`; throws Error naming the file when it cannot be read, is not JSON or not an object.
nlohmann::json read_json_file(const std::string& path);

// Reads typed fields of one JSON object and names `file: section.field` in every error.
class FieldReader {
 public:
  FieldReader(const std::string& file, const nlohmann::json& object, std::string section)
      : file_(file), object_(object), section_(std::move(section)) {}

  bool has(const char* key) const { return object_.contains(key) && !object_[key].is_null(); }

  int64_t integer(const char* key) const {
    if (!has(key)) fail(key, "is missing");
    if (!object_[key].is_number_integer()) fail(key, "must be an integer");
    return object_[key].get<int64_t>();
  }
  int64_t positive(const char* key) const {
    const int64_t value = integer(key);
    if (value <= 0) fail(key, "must be positive");
    return value;
  }
  int64_t integer_or(const char* key, int64_t fallback) const { return has(key) ? integer(key) : fallback; }
  double number_or(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    if (!object_[key].is_number()) fail(key, "must be a number");
    return object_[key].get<double>();
  }
  bool boolean_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!object_[key].is_boolean()) fail(key, "must be true or false");
    return object_[key].get<bool>();
  }
  std::string string_or(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!object_[key].is_string()) fail(key, "must be a string");
    return object_[key].get<std::string>();
  }
  // An integer or a list of integers (eos_token_id is written both ways).
  std::vector<int64_t> integer_list_or_empty(const char* key) const {
    if (!has(key)) return {};
    const nlohmann::json& value = object_[key];
    if (value.is_number_integer()) return {value.get<int64_t>()};
    if (!value.is_array()) fail(key, "must be an integer or a list of integers");
    std::vector<int64_t> out;
    for (const nlohmann::json& item : value) {
      if (!item.is_number_integer()) fail(key, "must hold integers only");
      out.push_back(item.get<int64_t>());
    }
    return out;
  }
  const nlohmann::json& object(const char* key) const {
    if (!has(key)) fail(key, "is missing");
    if (!object_[key].is_object()) fail(key, "must be an object");
    return object_[key];
  }

  [[noreturn]] void fail(const char* key, const char* what) const {
    throw_error(file_, ": ", section_.empty() ? "" : section_ + ".", key, " ", what);
  }

 private:
  const std::string& file_;
  const nlohmann::json& object_;
  std::string section_;
};

}  // namespace qwen3vl
