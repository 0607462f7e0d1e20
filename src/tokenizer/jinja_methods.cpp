// Attribute and item access, the Python methods of str / dict / list, and the globals (jinja_builtins.h).
#include <algorithm>
#include <cmath>
#include <ctime>

#include "tokenizer/jinja_args.h"
#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_format.h"
#include "tokenizer/jinja_objects.h"
#include "tokenizer/jinja_strings.h"

namespace qwen3vl::jinja {

namespace {

// jinja2.sandbox.MAX_RANGE.
constexpr int64_t kMaxRange = 100000;

[[noreturn]] void type_error(const std::string& message) { throw TemplateError(message); }

std::string require_string(const Value& value, const std::string& function) {
  if (!value.is_string()) type_error(function + "() argument must be str, not " + value.type_name());
  return value.text();
}

Value string_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (std::string& part : parts) items.push_back(Value::string(std::move(part)));
  return Value::list(std::move(items));
}

// ---- str methods ----

Value str_strip(const Value& self, CallArgs& args, const char* name, bool left, bool right) {
  Signature sig(name, args, {"chars"});
  return Value::string(text::strip(self.text(), sig.string(0), left, right));
}

Value str_split(Runtime& runtime, const Value& self, CallArgs& args, const char* name, bool from_right) {
  Signature sig(name, args, {"sep", "maxsplit"});
  auto parts = text::split(self.text(), sig.string(0), sig.integer(1).value_or(-1), from_right);
  if (!parts) type_error("empty separator");
  runtime.charge(parts->size());
  return string_list(std::move(*parts));
}

// startswith / endswith: a prefix or a tuple of them, over s[start:end].
Value str_affix(const Value& self, CallArgs& args, const char* name, bool at_end) {
  Signature sig(name, args, {"prefix", "start", "end"}, 1);
  const Value affixes = sig.get(0);
  const std::vector<char32_t> cps = text::code_points(self.text());
  const auto bounds = text::slice_bounds(static_cast<int64_t>(cps.size()), sig.integer(1), sig.integer(2), 1);
  const std::string window =
      bounds.start <= bounds.stop ? text::to_utf8(cps, static_cast<size_t>(bounds.start), static_cast<size_t>(bounds.stop))
                                  : std::string();
  if (sig.has(1) && *sig.integer(1) > static_cast<int64_t>(cps.size())) return Value::boolean(false);
  auto matches = [&](const Value& affix) {
    const std::string a = require_string(affix, name);
    if (a.size() > window.size()) return false;
    return at_end ? window.compare(window.size() - a.size(), a.size(), a) == 0 : window.compare(0, a.size(), a) == 0;
  };
  if (affixes.is_tuple()) {
    for (const Value& affix : affixes.items())
      if (matches(affix)) return Value::boolean(true);
    return Value::boolean(false);
  }
  if (!affixes.is_string())
    type_error(std::string(name) + " first arg must be str or a tuple of str, not " + affixes.type_name());
  return Value::boolean(matches(affixes));
}

Value str_find(const Value& self, CallArgs& args, const char* name, bool from_right, bool raise) {
  Signature sig(name, args, {"sub", "start", "end"}, 1);
  const std::string needle = require_string(sig.get(0), name);
  const int64_t at = text::find(self.text(), needle, sig.integer(1), sig.integer(2), from_right);
  if (at < 0 && raise) type_error("substring not found");
  return Value::integer(at);
}

Value str_join(Runtime& runtime, const Value& self, CallArgs& args) {
  Signature sig("join", args, {"iterable"}, 1);
  std::string out;
  size_t index = 0;
  for (const Value& item : iterate(sig.get(0))) {
    if (!item.is_string())
      type_error("sequence item " + std::to_string(index) + ": expected str instance, " + item.type_name() + " found");
    if (index++) out += self.text();
    out += item.text();
    if (out.size() > runtime.max_string_bytes()) type_error("string too long");
  }
  runtime.charge(out.size() / 64);
  return Value::string(std::move(out));
}

Value str_replace(Runtime& runtime, const Value& self, CallArgs& args) {
  Signature sig("replace", args, {"old", "new", "count"}, 2);
  const std::string old_text = require_string(sig.get(0), "replace");
  const std::string new_text = require_string(sig.get(1), "replace");
  auto out = text::replace(self.text(), old_text, new_text, sig.integer(2).value_or(-1), runtime.max_string_bytes());
  if (!out) type_error("string too long");
  runtime.charge(out->size() / 64);
  return Value::string(std::move(*out));
}

Value str_partition(const Value& self, CallArgs& args, bool from_right) {
  const char* name = from_right ? "rpartition" : "partition";
  Signature sig(name, args, {"sep"}, 1);
  const std::string sep = require_string(sig.get(0), name);
  if (sep.empty()) type_error("empty separator");
  const std::string& s = self.text();
  const size_t at = from_right ? s.rfind(sep) : s.find(sep);
  std::vector<Value> parts;
  if (at == std::string::npos) {
    parts = from_right ? std::vector<Value>{Value::string(""), Value::string(""), self}
                       : std::vector<Value>{self, Value::string(""), Value::string("")};
  } else {
    parts = {Value::string(s.substr(0, at)), Value::string(sep), Value::string(s.substr(at + sep.size()))};
  }
  return Value::list(std::move(parts), Value::Sequence::Tuple);
}

Value str_pad(const Value& self, CallArgs& args, const char* name, int align) {
  Signature sig(name, args, {"width", "fillchar"}, 1);
  const int64_t width = std::min<int64_t>(sig.integer(0).value_or(0), 1 << 20);
  const std::string fill = sig.string(1).value_or(" ");
  if (text::length(fill) != 1) type_error("The fill character must be exactly one character long");
  return Value::string(text::pad(self.text(), width, text::code_points(fill).front(), align));
}

template <typename Predicate>
Value str_is(const Value& self, CallArgs& args, const char* name, Predicate predicate) {
  Signature sig(name, args, {});
  const std::vector<char32_t> cps = text::code_points(self.text());
  return Value::boolean(!cps.empty() && std::all_of(cps.begin(), cps.end(), predicate));
}

Value str_format(Runtime& runtime, const Value& self, CallArgs& args) {
  std::string out = format_braces(self.text(), args);
  if (out.size() > runtime.max_string_bytes()) type_error("string too long");
  return Value::string(std::move(out));
}

Value str_affix_remove(const Value& self, CallArgs& args, bool suffix) {
  const char* name = suffix ? "removesuffix" : "removeprefix";
  Signature sig(name, args, {"affix"}, 1);
  const std::string affix = require_string(sig.get(0), name);
  const std::string& s = self.text();
  if (affix.size() > s.size()) return self;
  if (suffix) return s.compare(s.size() - affix.size(), affix.size(), affix) == 0 ? Value::string(s.substr(0, s.size() - affix.size())) : self;
  return s.compare(0, affix.size(), affix) == 0 ? Value::string(s.substr(affix.size())) : self;
}

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_alpha(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }

Value string_method(Runtime& runtime, const Value& self, const std::string& name, CallArgs& args) {
  if (name == "strip") return str_strip(self, args, "strip", true, true);
  if (name == "lstrip") return str_strip(self, args, "lstrip", true, false);
  if (name == "rstrip") return str_strip(self, args, "rstrip", false, true);
  if (name == "split") return str_split(runtime, self, args, "split", false);
  if (name == "rsplit") return str_split(runtime, self, args, "rsplit", true);
  if (name == "startswith") return str_affix(self, args, "startswith", false);
  if (name == "endswith") return str_affix(self, args, "endswith", true);
  if (name == "find") return str_find(self, args, "find", false, false);
  if (name == "rfind") return str_find(self, args, "rfind", true, false);
  if (name == "index") return str_find(self, args, "index", false, true);
  if (name == "rindex") return str_find(self, args, "rindex", true, true);
  if (name == "join") return str_join(runtime, self, args);
  if (name == "replace") return str_replace(runtime, self, args);
  if (name == "format") return str_format(runtime, self, args);
  if (name == "partition") return str_partition(self, args, false);
  if (name == "rpartition") return str_partition(self, args, true);
  if (name == "center") return str_pad(self, args, "center", 0);
  if (name == "ljust") return str_pad(self, args, "ljust", -1);
  if (name == "rjust") return str_pad(self, args, "rjust", 1);
  if (name == "removeprefix") return str_affix_remove(self, args, false);
  if (name == "removesuffix") return str_affix_remove(self, args, true);
  if (name == "count") {
    Signature sig("count", args, {"sub", "start", "end"}, 1);
    const std::string needle = require_string(sig.get(0), "count");
    return Value::integer(text::count(self.text(), needle, sig.integer(1), sig.integer(2)));
  }
  if (name == "splitlines") {
    Signature sig("splitlines", args, {"keepends"});
    return string_list(text::splitlines(self.text(), sig.flag(0, false)));
  }
  if (name == "isdigit") return str_is(self, args, "isdigit", is_ascii_digit);
  if (name == "isalpha") return str_is(self, args, "isalpha", is_alpha);
  if (name == "isalnum")
    return str_is(self, args, "isalnum", [](char32_t c) { return is_alpha(c) || is_ascii_digit(c); });
  if (name == "isspace") return str_is(self, args, "isspace", text::is_space);
  Signature sig(name, args, {});
  if (name == "upper") return Value::string(text::upper(self.text()));
  if (name == "lower") return Value::string(text::lower(self.text()));
  if (name == "title") return Value::string(text::title_method(self.text()));
  if (name == "capitalize") return Value::string(text::capitalize(self.text()));
  if (name == "islower") return Value::boolean(text::is_lower(self.text()));
  if (name == "isupper") return Value::boolean(text::is_upper(self.text()));
  type_error("'str' object has no attribute '" + name + "'");
}

const char* const kStringMethods[] = {
    "strip",   "lstrip",    "rstrip",     "split",        "rsplit",       "startswith", "endswith", "find",
    "rfind",   "index",     "rindex",     "join",         "replace",      "format",     "partition", "rpartition",
    "center",  "ljust",     "rjust",      "removeprefix", "removesuffix", "count",      "splitlines", "isdigit",
    "isalpha", "isalnum",   "isspace",    "upper",        "lower",        "title",      "capitalize", "islower",
    "isupper"};

// ---- dict and list methods ----

const char* const kDictMethods[] = {"get", "items", "keys", "values", "copy"};
const char* const kListMethods[] = {"index", "count", "copy"};
// What ImmutableSandboxedEnvironment refuses (jinja2.sandbox._mutable_spec).
const char* const kDictMutators[] = {"clear", "pop", "popitem", "setdefault", "update"};
const char* const kListMutators[] = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"};

template <size_t N>
bool in(const std::string& name, const char* const (&names)[N]) {
  return std::find_if(std::begin(names), std::end(names), [&](const char* n) { return name == n; }) != std::end(names);
}

Value dict_method(const Value& self, const std::string& name, CallArgs& args) {
  if (name == "get") {
    Signature sig("get", args, {"key", "default"}, 1);
    const Value* value = self.entries().find(sig.get(0));
    return value ? *value : sig.get(1, Value::none());
  }
  Signature sig(name, args, {});
  if (name == "copy") return self;
  std::vector<Value> items;
  for (const auto& [key, value] : self.entries().items) {
    if (name == "keys") items.push_back(key);
    if (name == "values") items.push_back(value);
    if (name == "items") items.push_back(Value::list({key, value}, Value::Sequence::Tuple));
  }
  return Value::object(std::make_shared<DictViewObject>(std::move(items), "dict_" + name));
}

Value list_method(const Value& self, const std::string& name, CallArgs& args) {
  if (name == "copy") {
    Signature sig(name, args, {});
    return Value::list(self.items());
  }
  Signature sig(name, args, {"value"}, 1);
  const Value needle = sig.get(0);
  int64_t found = 0;
  for (size_t i = 0; i < self.items().size(); ++i) {
    if (!equals(self.items()[i], needle)) continue;
    if (name == "index") return Value::integer(static_cast<int64_t>(i));
    ++found;
  }
  if (name == "index") type_error(needle.repr() + " is not in list");
  return Value::integer(found);
}

// jinja2's sandbox: a refused attribute reads as undefined and raises SecurityError when used.
Value unsafe_attribute(const Value& object, const std::string& name) {
  return Value::undefined("access to attribute '" + name + "' of '" + object.type_name() + "' object is unsafe.");
}

// The method `name` of a str, dict or list bound to `self`, or nothing.
std::optional<Value> method_of(const Value& self, const std::string& name) {
  if (self.is_string() && in(name, kStringMethods))
    return make_function(name, [self, name](Runtime& rt, CallArgs& args) { return string_method(rt, self, name, args); },
                         "str");
  if (self.is_dict()) {
    if (in(name, kDictMethods))
      return make_function(name, [self, name](Runtime&, CallArgs& args) { return dict_method(self, name, args); },
                           "dict");
    if (in(name, kDictMutators)) return unsafe_attribute(self, name);
  }
  if (self.is_list()) {
    const bool tuple = self.is_tuple();
    if (in(name, kListMethods) && !(tuple && name == "copy"))
      return make_function(name, [self, name](Runtime&, CallArgs& args) { return list_method(self, name, args); },
                           self.type_name());
    if (!tuple && in(name, kListMutators)) return unsafe_attribute(self, name);
  }
  return std::nullopt;
}

Value missing_attribute(const Value& object, const std::string& name) {
  return Value::undefined("'" + object.object_type_repr() + "' has no attribute '" + name + "'");
}

std::optional<int64_t> slice_index(const std::optional<Value>& given) {
  if (!given || given->is_none()) return std::nullopt;
  const Value& value = *given;
  if (value.is_int() || value.is_bool()) return value.as_int();
  if (value.is_undefined()) value.fail_undefined();
  type_error("slice indices must be integers or None or have an __index__ method");
}

// ---- globals ----

Value range_function(Runtime& runtime, CallArgs& args) {
  if (!args.keywords.empty()) type_error("range() takes no keyword arguments");
  std::vector<int64_t> bounds;
  for (const Value& arg : args.positional) {
    if (!arg.is_int() && !arg.is_bool()) type_error("'" + arg.type_name() + "' object cannot be interpreted as an integer");
    bounds.push_back(arg.as_int());
  }
  if (bounds.empty() || bounds.size() > 3) type_error("range expected at most 3 arguments");
  const int64_t start = bounds.size() == 1 ? 0 : bounds[0];
  const int64_t stop = bounds.size() == 1 ? bounds[0] : bounds[1];
  const int64_t step = bounds.size() == 3 ? bounds[2] : 1;
  if (step == 0) type_error("range() arg 3 must not be zero");
  const long double span = (static_cast<long double>(stop) - start) / step;
  const int64_t count = span <= 0 ? 0 : static_cast<int64_t>(std::ceil(span));
  if (count > kMaxRange)
    type_error("Range too big. The sandbox blocks ranges larger than MAX_RANGE (" + std::to_string(kMaxRange) + ").");
  runtime.charge(static_cast<uint64_t>(count));
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) items.push_back(Value::integer(start + i * step));
  return Value::list(std::move(items));
}

// dict(mapping_or_pairs, **kwargs), as Python builds it.
DictData build_dict(const CallArgs& args, const char* function) {
  if (args.positional.size() > 1) type_error(std::string(function) + " expected at most 1 argument");
  DictData dict;
  if (!args.positional.empty()) {
    const Value& source = args.positional.front();
    if (source.is_dict()) {
      dict = source.entries();
    } else {
      for (const Value& pair : iterate(source)) {
        const std::vector<Value> parts = iterate(pair);
        if (parts.size() != 2)
          type_error("dictionary update sequence element has length " + std::to_string(parts.size()) + "; 2 is required");
        dict.set(parts[0], parts[1]);
      }
    }
  }
  for (const auto& [name, value] : args.keywords) dict.set(Value::string(name), value);
  return dict;
}

Value namespace_function(Runtime& runtime, CallArgs& args) {
  auto ns = std::make_shared<NamespaceObject>();
  for (const auto& [key, value] : build_dict(args, "namespace").items) {
    if (!key.is_string()) type_error("keywords must be strings");
    ns->set(key.text(), value);
  }
  runtime.track(ns);
  return Value::object(ns);
}

// transformers' strftime_now: datetime.now().strftime(format).
Value strftime_now(Runtime& runtime, CallArgs& args) {
  Signature sig("strftime_now", args, {"format"}, 1);
  const std::string format = require_string(sig.get(0), "strftime_now");
  const std::tm now = runtime.now();
  std::string out(256 + format.size() * 16, '\0');
  const size_t size = format.empty() ? 0 : std::strftime(out.data(), out.size(), format.c_str(), &now);
  out.resize(size);
  return Value::string(out);
}

}  // namespace

Value get_attribute(Runtime&, const Value& object, const std::string& name) {
  if (object.is_undefined()) object.fail_undefined();
  if (object.is_object()) return object.object().attribute(name);
  if (auto method = method_of(object, name)) return *method;
  if (object.is_dict()) {
    if (const Value* value = object.entries().find(name)) return *value;
  }
  return missing_attribute(object, name);
}

Value get_item(Runtime&, const Value& object, const Value& key) {
  if (object.is_undefined()) object.fail_undefined();
  if (object.is_dict()) {
    const bool hashable = !key.is_dict() && !(key.is_list() && !key.is_tuple());
    if (hashable)
      if (const Value* value = object.entries().find(key)) return *value;
  } else if ((object.is_list() || object.is_string()) && (key.is_int() || key.is_bool())) {
    const int64_t size = length(object);
    int64_t index = key.as_int();
    if (index < 0) index += size;
    if (index >= 0 && index < size) {
      if (object.is_list()) return object.items()[static_cast<size_t>(index)];
      const std::vector<char32_t> cps = text::code_points(object.text());
      return Value::string(text::to_utf8(cps, static_cast<size_t>(index), static_cast<size_t>(index) + 1));
    }
    return Value::undefined(object.object_type_repr() + " has no element " + key.repr());
  }
  if (key.is_string()) {  // obj['name'] falls back to the attribute
    if (object.is_object()) return object.object().attribute(key.text());
    if (auto method = method_of(object, key.text())) return *method;
    return missing_attribute(object, key.text());
  }
  return Value::undefined(object.object_type_repr() + " has no element " + key.repr());
}

Value get_slice(const Value& object, const std::optional<Value>& start, const std::optional<Value>& stop,
                const std::optional<Value>& step) {
  if (object.is_undefined()) object.fail_undefined();
  const std::optional<int64_t> step_index = slice_index(step);
  if (step_index && *step_index == 0) type_error("slice step cannot be zero");
  if (!object.is_string() && !object.is_list()) type_error("'" + object.type_name() + "' object is not subscriptable");
  const int64_t size = length(object);
  const text::SliceBounds bounds = text::slice_bounds(size, slice_index(start), slice_index(stop), step_index);
  const int64_t count = bounds.count();
  if (object.is_string()) {
    const std::vector<char32_t> cps = text::code_points(object.text());
    std::vector<char32_t> picked;
    for (int64_t i = 0, at = bounds.start; i < count; ++i, at += bounds.step) picked.push_back(cps[static_cast<size_t>(at)]);
    return Value::string(text::to_utf8(picked, 0, picked.size()));
  }
  std::vector<Value> picked;
  picked.reserve(static_cast<size_t>(count));
  for (int64_t i = 0, at = bounds.start; i < count; ++i, at += bounds.step)
    picked.push_back(object.items()[static_cast<size_t>(at)]);
  return Value::list(std::move(picked), object.is_tuple() ? Value::Sequence::Tuple : Value::Sequence::List);
}

Value global_value(const std::string& name) {
  if (name == "range") return make_function("range", range_function);
  if (name == "namespace") return make_function("namespace", namespace_function);
  if (name == "strftime_now") return make_function("strftime_now", strftime_now);
  if (name == "raise_exception")
    return make_function("raise_exception", [](Runtime&, CallArgs& args) -> Value {
      Signature sig("raise_exception", args, {"message"}, 1);
      throw RaisedError(sig.get(0).str());
    });
  if (name == "dict")
    return make_function("dict", [](Runtime&, CallArgs& args) { return Value::dict(build_dict(args, "dict")); });
  return Value::undefined("'" + name + "' is undefined");
}

}  // namespace qwen3vl::jinja
