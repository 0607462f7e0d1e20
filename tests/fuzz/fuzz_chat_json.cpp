// The chat template's JSON (tokenizer/chat_template_json.h), which reads client JSON: parse, print, parse again, and
// the second print must equal the first. Every float parsed goes through python_float_repr, whose text must read
// back as the same double. Run with -timeout so a parse that is not linear in the input shows up as a timeout.
#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "fuzz_common.h"
#include "tokenizer/chat_template_json.h"

namespace {

using qwen3vl::chat_json::Value;

void check_floats(const Value& value) {
  if (value.kind == Value::Kind::Float) {
    const double number = std::strtod(value.text.c_str(), nullptr);
    const std::string repr = qwen3vl::chat_json::python_float_repr(number);
    if (std::isfinite(number))
      qwen3vl::fuzz::check(std::strtod(repr.c_str(), nullptr) == number, "python_float_repr reads back");
  }
  for (const Value& item : value.items) check_floats(item);
  for (const auto& member : value.members) check_floats(member.second);
}

// A float literal beyond DBL_MAX reads as inf, which dumps prints as Infinity, as Python's json.dumps does
// (allow_nan=True): not JSON, so such a value has no round trip to check.
bool has_infinite_float(const Value& value) {
  if (value.kind == Value::Kind::Float && std::isinf(std::strtod(value.text.c_str(), nullptr))) return true;
  for (const Value& item : value.items)
    if (has_infinite_float(item)) return true;
  for (const auto& member : value.members)
    if (has_infinite_float(member.second)) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  Value value;
  try {
    value = qwen3vl::chat_json::parse(text, "fuzz");
  } catch (const qwen3vl::Error&) {
    return 0;
  }
  const std::string printed = qwen3vl::chat_json::dumps(value);
  if (has_infinite_float(value)) {
    qwen3vl::fuzz::check(printed.find("Infinity") != std::string::npos, "an infinite float prints as Infinity");
    return 0;
  }
  const Value reparsed = qwen3vl::chat_json::parse(printed, "printed");  // must not throw
  qwen3vl::fuzz::check(qwen3vl::chat_json::dumps(reparsed) == printed, "dumps(parse(dumps(v))) == dumps(v)");
  check_floats(value);
  return 0;
}
