// The built-in behaviour of the chat-template interpreter (jinja_template.h): jinja2's filters and tests, its
// sandboxed attribute and item access (jinja2/sandbox.py, ImmutableSandboxedEnvironment: methods that modify lists
// and dicts are refused), the Python methods templates call on strings, dicts and lists, the operators, and the
// globals transformers adds (raise_exception, strftime_now, namespace, dict) beside jinja2's range.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>

#include "tokenizer/jinja_value.h"

namespace qwen3vl::jinja {

// What the built-ins need from the interpreter running them.
class Runtime {
 public:
  virtual Value call(const Value& callee, CallArgs& args) = 0;
  virtual Value filter(const std::string& name, const Value& value, CallArgs& args) = 0;
  virtual bool test(const std::string& name, const Value& value, CallArgs& args) = 0;
  // Counts work against the render's budget (one unit per operation, more for long strings); throws
  // TemplateError when the budget is spent.
  virtual void charge(uint64_t units) = 0;
  // The longest string a render may build.
  virtual size_t max_string_bytes() const = 0;
  // The time strftime_now() formats.
  virtual std::tm now() const = 0;
  // Keeps `object` to be released (its references dropped) when the render ends, so that reference cycles through
  // namespaces, loops and macros cannot leak.
  virtual void track(const std::shared_ptr<Object>& object) = 0;

 protected:
  ~Runtime() = default;
};

bool has_filter(const std::string& name);
Value apply_filter(Runtime& runtime, const std::string& name, const Value& value, CallArgs& args);
bool has_test(const std::string& name);
bool apply_test(Runtime& runtime, const std::string& name, const Value& value, CallArgs& args);

// jinja2's sandboxed getattr (`obj.name`) and getitem (`obj[key]`): attributes first then items for `.`, items
// first then attributes for `[]`; what is missing is undefined, and undefined objects raise.
Value get_attribute(Runtime& runtime, const Value& object, const std::string& name);
Value get_item(Runtime& runtime, const Value& object, const Value& key);
// obj[start:stop:step] for strings, lists and tuples (an absent bound is std::nullopt).
Value get_slice(const Value& object, const std::optional<Value>& start, const std::optional<Value>& stop,
                const std::optional<Value>& step);

// The globals every template sees: range, dict, namespace, raise_exception, strftime_now. Undefined for other names.
Value global_value(const std::string& name);

// Python's binary operators: + - * / // % ** (op as written), and `in`.
Value binary_operator(Runtime& runtime, const std::string& op, const Value& left, const Value& right);
Value negate(const Value& value, bool minus);
bool contains(const Value& container, const Value& item);

// An iterator object (a generator, a reversed list): truthy, no len(), and emptied as it is iterated.
Value make_iterator(std::vector<Value> items, const std::string& type_name);

}  // namespace qwen3vl::jinja
