// Binding a call's arguments to a Python-style signature, for the interpreter's built-ins (jinja_builtins.h).
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace qwen3vl::jinja {

// Parameters by position and name; errors are worded as Python's TypeError for the named function.
class Signature {
 public:
  Signature(const std::string& function, const CallArgs& args, std::initializer_list<const char*> names,
            size_t required = 0)
      : function_(function), names_(names), slots_(names.size()) {
    if (args.positional.size() > names_.size())
      throw TemplateError(function_ + "() takes at most " + std::to_string(names_.size()) + " argument(s) (" +
                          std::to_string(args.positional.size()) + " given)");
    for (size_t i = 0; i < args.positional.size(); ++i) slots_[i] = args.positional[i];
    for (const auto& [name, value] : args.keywords) {
      size_t i = 0;
      while (i < names_.size() && name != names_[i]) ++i;
      if (i == names_.size())
        throw TemplateError(function_ + "() got an unexpected keyword argument '" + name + "'");
      if (slots_[i]) throw TemplateError(function_ + "() got multiple values for argument '" + name + "'");
      slots_[i] = value;
    }
    for (size_t i = 0; i < required; ++i)
      if (!slots_[i])
        throw TemplateError(function_ + "() missing required argument '" + std::string(names_[i]) + "'");
  }

  bool has(size_t i) const { return slots_[i].has_value(); }
  Value get(size_t i, Value fallback = Value()) const { return slots_[i] ? *slots_[i] : fallback; }
  // A parameter that must be a string / an integer / a bool-ish flag when given.
  std::optional<std::string> string(size_t i) const {
    if (!slots_[i] || slots_[i]->is_none()) return std::nullopt;
    if (!slots_[i]->is_string()) wrong_type(i, "str");
    return slots_[i]->text();
  }
  std::optional<int64_t> integer(size_t i) const {
    if (!slots_[i] || slots_[i]->is_none()) return std::nullopt;
    if (!slots_[i]->is_int() && !slots_[i]->is_bool()) wrong_type(i, "int");
    return slots_[i]->as_int();
  }
  bool flag(size_t i, bool fallback) const { return slots_[i] ? slots_[i]->truthy() : fallback; }

  [[noreturn]] void wrong_type(size_t i, const char* expected) const {
    throw TemplateError(function_ + "(): argument '" + names_[i] + "' must be " + expected + ", not " +
                        slots_[i]->type_name());
  }

 private:
  std::string function_;
  std::vector<const char*> names_;
  std::vector<std::optional<Value>> slots_;
};

}  // namespace qwen3vl::jinja
