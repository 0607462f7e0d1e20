// Values of the chat-template interpreter (jinja_template.h): the Python objects a Hugging Face chat template sees
// when transformers renders it with jinja2, with Python's semantics for truthiness, equality, ordering, str() and
// repr(), and json.dumps for `tojson`.
//
// Lists, tuples and dicts are immutable once built (transformers renders in jinja2's ImmutableSandboxedEnvironment,
// which refuses list.append, dict.update and the like), so they are shared, never copied. The mutable objects are
// the namespaces, loop contexts and generators, which live behind `Object`.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace qwen3vl::jinja {

// A runtime error of the template, worded as jinja2 words it; the renderer adds the source name and line.
class TemplateError : public std::runtime_error {
 public:
  explicit TemplateError(const std::string& message) : std::runtime_error(message) {}
};

// The template's own raise_exception(message).
class RaisedError : public TemplateError {
 public:
  explicit RaisedError(const std::string& message) : TemplateError(message) {}
};

// Nesting limit for lists and dicts (built from input JSON or by the template), so printing, comparing and freeing
// them never recurses deeper than this.
constexpr int kMaxNesting = 512;

class Value;
class Object;
class Runtime;
struct ListData;
struct DictData;

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;
};

class Value {
 public:
  enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Object };
  // Python's list and tuple differ only in how they print and in the `is` tests.
  enum class Sequence : uint8_t { List, Tuple };

  Value() = default;  // undefined
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool value);
  static Value integer(int64_t value);
  // An integer outside int64 (from input JSON, as Python's unbounded int keeps it): decimal digits with an optional
  // '-'. It prints, compares and converts to JSON exactly; arithmetic on it fails with "integer overflow".
  static Value big_integer(std::string digits);
  static Value number(double value);
  static Value string(std::string text);
  static Value list(std::vector<Value> items, Sequence sequence = Sequence::List);
  static Value dict(DictData data);
  static Value object(std::shared_ptr<Object> object);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_number() const { return kind_ == Kind::Bool || kind_ == Kind::Int || kind_ == Kind::Float; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_tuple() const;
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_object() const { return kind_ == Kind::Object; }

  bool is_big_integer() const { return kind_ == Kind::Int && text_ != nullptr; }

  bool as_bool() const { return boolean_; }
  // Bool or Int as int64; throws TemplateError("integer overflow") for a big integer.
  int64_t as_int() const;
  // Bool, Int or Float as a double.
  double as_double() const;
  // String: the text; a big Int: its digits; Undefined: the hint (maybe empty).
  const std::string& text() const { return *text_; }
  const std::vector<Value>& items() const;            // List
  const DictData& entries() const { return *dict_; }  // Dict
  Object& object() const { return *object_; }
  const std::shared_ptr<Object>& object_ptr() const { return object_; }
  int nesting() const;  // 0 for scalars, 1 + the deepest element for lists and dicts

  // Python's bool(), str(), repr() and type(x).__name__.
  bool truthy() const;
  std::string str() const;
  std::string repr() const;
  std::string type_name() const;
  // How jinja2 names the value in an undefined-attribute message: "dict object", "None", "str object".
  std::string object_type_repr() const;

  // The message an operation on this undefined value fails with (jinja2's UndefinedError).
  [[noreturn]] void fail_undefined() const;

 private:
  Kind kind_ = Kind::Undefined;
  Sequence sequence_ = Sequence::List;
  bool boolean_ = false;
  int64_t integer_ = 0;
  double number_ = 0.0;
  std::shared_ptr<const std::string> text_;
  std::shared_ptr<const ListData> list_;
  std::shared_ptr<const DictData> dict_;
  std::shared_ptr<Object> object_;
};

struct ListData {
  std::vector<Value> items;
  int nesting = 1;
};

// A Python dict: insertion order, keys compared as Python compares them (1 == 1.0 == True).
struct DictData {
  std::vector<std::pair<Value, Value>> items;
  int nesting = 1;

  // The value under `key`, or nullptr. Throws TemplateError for an unhashable key (a list or a dict).
  const Value* find(const Value& key) const;
  const Value* find(const std::string& key) const;
  // Inserts, or replaces the value keeping the key's first position (Python's d[key] = value).
  void set(const Value& key, Value value);
  size_t size() const { return items.size(); }

 private:
  std::map<std::string, size_t> index_;  // hash_key() -> position; ordered, so colliding keys cannot flood it
};

// Mutable or callable objects: namespaces, loop contexts, generators, macros, builtin functions, bound methods.
class Object {
 public:
  virtual ~Object() = default;
  virtual std::string type_name() const = 0;
  virtual std::string repr() const = 0;
  // Attribute access (`obj.name`); undefined when there is none.
  virtual Value attribute(const std::string& name);
  virtual bool callable() const { return false; }
  virtual Value call(Runtime& runtime, CallArgs& args);
  // Generators iterate once: iterate() hands out the items not taken yet. Other objects are not iterable.
  virtual bool iterable() const { return false; }
  virtual std::vector<Value> iterate();
  // len(), for objects that have one (dict views); they are then false when empty.
  virtual std::optional<int64_t> size() const { return std::nullopt; }
  // Drops the references this object holds; called on namespaces and macros when a render ends, which breaks any
  // reference cycle (every cycle passes through one of them: they are the only objects that change or close over
  // a scope).
  virtual void release() {}
};

// Python's `a == b` (numbers by value across bool/int/float, containers element-wise).
bool equals(const Value& a, const Value& b);
// Python's `a < b`; throws TemplateError for values Python cannot order ('<' not supported between ...).
bool less(const Value& a, const Value& b);
// A string that is equal for keys Python's dict treats as the same; throws TemplateError for unhashable values.
std::string hash_key(const Value& key);
// Python's iter(): the items of a list or tuple, the keys of a dict, the characters of a string, the rest of a
// generator, nothing for undefined. Throws TemplateError for values that are not iterable.
std::vector<Value> iterate(const Value& value);
// Python's len(), or a TemplateError ("object of type 'int' has no len()").
int64_t length(const Value& value);
// Python's repr() of a string: quotes chosen and characters escaped as CPython does.
std::string python_string_repr(const std::string& text);
// Python's repr() of a float ("1.0", "1e+16", "inf", "nan").
std::string python_float_str(double value);

struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // json.dumps's indent as the text of one level (an int n: n spaces)
  std::optional<std::pair<std::string, std::string>> separators;  // (item, key); default ", " or "," and ": "
  bool sort_keys = false;
};
// json.dumps(value, ...) as transformers' `tojson` filter calls it; throws TemplateError for values JSON cannot
// hold ("Object of type Undefined is not JSON serializable").
std::string to_json(const Value& value, const JsonOptions& options);

}  // namespace qwen3vl::jinja
