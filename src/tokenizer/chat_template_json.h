// Minimal JSON support for the chat template: parse JSON text the way Python's json.loads does and
// print it the way the chat template's `tojson` filter does.
//
// transformers overrides Jinja's `tojson` with
//   json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
// so the output uses ", " and ": " separators, keeps object keys in insertion order, leaves non-ASCII text
// as UTF-8, prints integers exactly (Python ints are unbounded) and floats as Python's repr().
// nlohmann::json cannot reproduce that byte for byte (it turns integers above 2^64 into doubles and prints
// 1e15 as "1e+15" where Python prints "1000000000000000.0"), so this small DOM keeps the raw number text.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace qwen3vl::chat_json {

struct Value {
  enum class Kind { Null, Bool, Integer, Float, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  // String: the decoded UTF-8 text. Integer / Float: the number exactly as written in the JSON text.
  std::string text;
  std::vector<Value> items;                             // Array
  std::vector<std::pair<std::string, Value>> members;  // Object, in insertion order, keys unique

  bool is_object() const { return kind == Kind::Object; }
  bool is_array() const { return kind == Kind::Array; }
  bool is_string() const { return kind == Kind::String; }
  bool is_null() const { return kind == Kind::Null; }
  // The member named `key`, or nullptr.
  const Value* find(const std::string& key) const;
};

// Parses one JSON value (RFC 8259, as Python's json.loads accepts it except NaN/Infinity literals and lone
// UTF-16 surrogates, which are rejected). Duplicate keys behave as in a Python dict: the last value wins and
// the key keeps its first position. Throws qwen3vl::Error("<what>: ...") on malformed input.
Value parse(const std::string& text, const std::string& what);

// Python's json.dumps(value, ensure_ascii=False) with default separators.
std::string dumps(const Value& value);

// Python's repr() of a float as json.dumps prints it (including "Infinity", "-Infinity", "NaN").
std::string python_float_repr(double value);

}  // namespace qwen3vl::chat_json
