#include "io/json_fields.h"

#include <fstream>

namespace qwen3vl {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw_error(path, ": cannot open");
  nlohmann::json value = nlohmann::json::parse(in, nullptr, false);
  if (value.is_discarded()) throw_error(path, ": not valid JSON");
  if (!value.is_object()) throw_error(path, ": expected a JSON object");
  return value;
}

}  // namespace qwen3vl
