// Python's string formatting for the chat-template interpreter: printf-style `format % values` (also jinja2's
// `format` filter) and str.format with the common format-spec mini-language. Errors are TemplateError with
// Python's wording.
#pragma once

#include <string>

#include "tokenizer/jinja_value.h"

namespace qwen3vl::jinja {

// `format % arguments`: a tuple supplies several values, a dict supplies %(name)s keys, anything else is one value.
std::string format_percent(const std::string& format, const Value& arguments);

// `format.format(*positional, **keywords)`: {} / {0} / {name} fields with !r / !s / !a and a format spec.
std::string format_braces(const std::string& format, const CallArgs& args);

}  // namespace qwen3vl::jinja
