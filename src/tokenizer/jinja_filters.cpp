// jinja2's filters (jinja2/filters.py) and tests (jinja2/tests.py), with transformers' own `tojson`
// (jinja_builtins.h).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "tokenizer/jinja_args.h"
#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_format.h"
#include "tokenizer/jinja_objects.h"
#include "tokenizer/jinja_strings.h"

namespace qwen3vl::jinja {

namespace {

using FilterFunction = Value (*)(Runtime&, const Value&, CallArgs&);

[[noreturn]] void fail(const std::string& message) { throw TemplateError(message); }

Value text_value(Runtime& runtime, std::string text) {
  if (text.size() > runtime.max_string_bytes()) fail("string too long");
  runtime.charge(text.size() / 64);
  return Value::string(std::move(text));
}

Value generator(std::vector<Value> items) { return make_iterator(std::move(items), "generator"); }

// jinja2's make_attrgetter: "a.b.0" looked up part by part with getitem, digits as integers.
class AttributeGetter {
 public:
  AttributeGetter(Runtime& runtime, const Value& attribute, bool ignore_case, std::optional<Value> fallback = {})
      : runtime_(runtime), ignore_case_(ignore_case), fallback_(std::move(fallback)) {
    if (attribute.is_undefined() || attribute.is_none()) return;
    if (!attribute.is_string()) {
      parts_.push_back(attribute);
      return;
    }
    const std::vector<std::string> parts = *text::split(attribute.text(), std::string("."), -1, false);
    for (const std::string& part : parts) {
      const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
      parts_.push_back(digits && part.size() < 18 ? Value::integer(std::stoll(part)) : Value::string(part));
    }
  }

  Value operator()(Value item) const {
    for (const Value& part : parts_) {
      item = get_item(runtime_, item, part);
      if (fallback_ && item.is_undefined()) item = *fallback_;
    }
    if (ignore_case_ && item.is_string()) return Value::string(text::lower(item.text()));
    return item;
  }

 private:
  Runtime& runtime_;
  bool ignore_case_;
  std::optional<Value> fallback_;
  std::vector<Value> parts_;
};

// ---- filters ----

Value f_abs(Runtime&, const Value& v, CallArgs& args) {
  Signature("abs", args, {});
  if (v.is_float()) return Value::number(std::fabs(v.as_double()));
  if (v.is_int() || v.is_bool()) {
    if (v.as_int() == INT64_MIN) fail("integer overflow");
    return Value::integer(std::llabs(v.as_int()));
  }
  fail("bad operand type for abs(): '" + v.type_name() + "'");
}

Value f_attr(Runtime& runtime, const Value& v, CallArgs& args) {
  Signature sig("attr", args, {"name"}, 1);
  if (!sig.get(0).is_string()) return Value::undefined("attribute name must be a string");
  if (v.is_dict()) {  // only attributes, not keys: a dict's methods
    const Value method = get_attribute(runtime, v, sig.get(0).text());
    return method.is_object() ? method : Value::undefined("'dict object' has no attribute '" + sig.get(0).text() + "'");
  }
  return get_attribute(runtime, v, sig.get(0).text());
}

Value f_batch(Runtime&, const Value& v, CallArgs& args) {
  Signature sig("batch", args, {"linecount", "fill_with"}, 1);
  const int64_t size = sig.integer(0).value_or(0);
  if (size <= 0) fail("batch size must be positive");
  std::vector<Value> batches, current;
  for (const Value& item : iterate(v)) {
    current.push_back(item);
    if (static_cast<int64_t>(current.size()) == size) batches.push_back(Value::list(std::exchange(current, {})));
  }
  if (!current.empty()) {
    if (sig.has(1) && !sig.get(1).is_none())
      while (static_cast<int64_t>(current.size()) < size) current.push_back(sig.get(1));
    batches.push_back(Value::list(std::move(current)));
  }
  return generator(std::move(batches));
}

Value f_capitalize(Runtime& rt, const Value& v, CallArgs& args) {
  Signature("capitalize", args, {});
  return text_value(rt, text::capitalize(v.str()));
}

Value f_center(Runtime& rt, const Value& v, CallArgs& args) {
  Signature sig("center", args, {"width"});
  return text_value(rt, text::pad(v.str(), std::min<int64_t>(sig.integer(0).value_or(80), 1 << 20), ' ', 0));
}

Value f_length(Runtime&, const Value& v, CallArgs& args) {
  Signature("length", args, {});
  return Value::integer(length(v));
}

Value f_default(Runtime&, const Value& v, CallArgs& args) {
  Signature sig("default", args, {"default_value", "boolean"});
  if (v.is_undefined() || (sig.flag(1, false) && !v.truthy())) return sig.get(0, Value::string(""));
  return v;
}

Value f_dictsort(Runtime&, const Value& v, CallArgs& args) {
  Signature sig("dictsort", args, {"case_sensitive", "by", "reverse"});
  if (v.is_undefined()) v.fail_undefined();
  if (!v.is_dict()) fail("'" + v.type_name() + "' object has no attribute 'items'");
  const std::string by = sig.string(1).value_or("key");
  if (by != "key" && by != "value") fail("You can only sort by either \"key\" or \"value\"");
  const bool case_sensitive = sig.flag(0, false);
  auto key = [&](const std::pair<Value, Value>& item) {
    const Value& part = by == "key" ? item.first : item.second;
    return !case_sensitive && part.is_string() ? Value::string(text::lower(part.text())) : part;
  };
  std::vector<std::pair<Value, Value>> items = v.entries().items;
  const bool reverse = sig.flag(2, false);
  std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) {
    return reverse ? less(key(b), key(a)) : less(key(a), key(b));
  });
  std::vector<Value> out;
  for (auto& [k, value] : items) out.push_back(Value::list({k, value}, Value::Sequence::Tuple));
  return Value::list(std::move(out));
}

Value f_escape(Runtime& rt, const Value& v, CallArgs& args) {
  Signature("escape", args, {});
  std::string out;
  for (char c : v.str()) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return text_value(rt, std::move(out));
}

Value f_first(Runtime&, const Value& v, CallArgs& args) {
  Signature("first", args, {});
  if (v.is_object() && v.object().iterable()) {
    if (auto* it = dynamic_cast<IteratorObject*>(&v.object())) {
      Value item;
      return it->take(item) ? item : Value::undefined("No first item, sequence was empty.");
    }
  }
  const std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(Runtime&, const Value& v, CallArgs& args) {
  Signature("last", args, {});
  if (v.is_object() && !v.object().size()) fail("'" + v.type_name() + "' object is not reversible");
  const std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

// Python's float(str): surrounding whitespace, underscores between digits, inf / nan spelled out.
std::optional<double> parse_float(const std::string& text) {
  std::string s = text::strip(text, std::nullopt, true, true);
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  if (s.empty()) return std::nullopt;
  const std::string lower = text::lower(s);
  const std::string unsigned_part = lower[0] == '+' || lower[0] == '-' ? lower.substr(1) : lower;
  const double sign = lower[0] == '-' ? -1.0 : 1.0;
  if (unsigned_part == "inf" || unsigned_part == "infinity") return sign * HUGE_VAL;
  if (unsigned_part == "nan") return std::nan("");
  if (unsigned_part.find_first_not_of("0123456789.e+-") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return value;
}

Value f_float(Runtime&, const Value& v, CallArgs& args) {
  Signature sig("float", args, {"default"});
  if (v.is_undefined()) v.fail_undefined();
  if (v.is_number()) return Value::number(v.as_double());
  if (v.is_string())
    if (auto parsed = parse_float(v.text())) return Value::number(*parsed);
  return sig.get(0, Value::number(0.0));
}

// Python's int(str, base): whitespace, a sign, underscores between digits, a 0x / 0o / 0b prefix for base 0 or its
// own base.
std::optional<int64_t> parse_int(const std::string& text, int64_t base) {
  std::string s = text::strip(text, std::nullopt, true, true);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.erase(0, 1);
  }
  if (s.size() > 2 && s[0] == '0') {
    const char p = static_cast<char>(std::tolower(s[1]));
    const int64_t prefix_base = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (prefix_base && (base == 0 || base == prefix_base)) {
      base = prefix_base;
      s.erase(0, 2);
      if (!s.empty() && s[0] == '_') s.erase(0, 1);
    }
  }
  if (base == 0) base = 10;
  if (base < 2 || base > 36 || s.empty() || s.front() == '_' || s.back() == '_' || s.find("__") != std::string::npos)
    return std::nullopt;
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  int64_t value = 0;
  for (char c : s) {
    const int digit = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                      : std::isalpha(static_cast<unsigned char>(c)) ? std::tolower(c) - 'a' + 10
                                                                     : 99;
    if (digit >= base) return std::nullopt;
    if (__builtin_mul_overflow(value, base, &value) || __builtin_add_overflow(value, digit, &value)) return std::nullopt;
  }
  return negative ? -value : value;
}

Value f_int(Runtime&, const Value& v, CallArgs& args) {
  Signature sig("int", args, {"default", "base"});
  if (v.is_undefined()) v.fail_undefined();
  const Value fallback = sig.get(0, Value::integer(0));
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float()) {
    const double d = v.as_double();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value::integer(static_cast<int64_t>(d));
  }
  if (!v.is_string()) return fallback;
  if (auto parsed = parse_int(v.text(), sig.integer(1).value_or(10))) return Value::integer(*parsed);
  if (auto parsed = parse_float(v.text()))
    if (std::isfinite(*parsed) && std::fabs(*parsed) < 9.2e18) return Value::integer(static_cast<int64_t>(*parsed));
  return fallback;
}

Value f_format(Runtime& rt, const Value& v, CallArgs& args) {
  if (!args.positional.empty() && !args.keywords.empty())
    fail("can't handle positional and keyword arguments at the same time");
  Value arguments;
  if (!args.keywords.empty()) {
    DictData mapping;
    for (const auto& [name, value] : args.keywords) mapping.set(Value::string(name), value);
    arguments = Value::dict(std::move(mapping));
  } else {
    arguments = Value::list(args.positional, Value::Sequence::Tuple);
  }
  return text_value(rt, format_percent(v.str(), arguments));
}

Value f_indent(Runtime& rt, const Value& v, CallArgs& args) {
  Signature sig("indent", args, {"width", "first", "blank"});
  const Value width = sig.get(0, Value::integer(4));
  const std::string indention =
      width.is_string() ? width.text() : std::string(static_cast<size_t>(std::clamp<int64_t>(width.as_int(), 0, 1 << 16)), ' ');
  // jinja2 appends a newline first so that splitlines keeps a trailing empty line.
  const std::vector<std::string> lines = text::splitlines(v.str() + "\n", false);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += "\n";
    if (i && (sig.flag(2, false) || !lines[i].empty())) out += indention;
    out += lines[i];
    if (out.size() > rt.max_string_bytes()) fail("string too long");
  }
  if (sig.flag(1, false)) out = indention + out;
  return text_value(rt, std::move(out));
}

Value f_join(Runtime& rt, const Value& v, CallArgs& args) {
  Signature sig("join", args, {"d", "attribute"});
  const std::string separator = sig.get(0, Value::string("")).str();
  const AttributeGetter getter(rt, sig.get(1), false);
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += separator;
    first = false;
    out += (sig.has(1) ? getter(item) : item).str();
    if (out.size() > rt.max_string_bytes()) fail("string too long");
  }
  return text_value(rt, std::move(out));
}

Value f_list(Runtime&, const Value& v, CallArgs& args) {
  Signature("list", args, {});
  return Value::list(iterate(v));
}

Value f_lower(Runtime& rt, const Value& v, CallArgs& args) {
  Signature("lower", args, {});
  return text_value(rt, text::lower(v.str()));
}

Value f_upper(Runtime& rt, const Value& v, CallArgs& args) {
  Signature("upper", args, {});
  return text_value(rt, text::upper(v.str()));
}

Value f_items(Runtime&, const Value& v, CallArgs& args) {
  Signature("items", args, {});
  if (v.is_undefined()) return generator({});
  if (!v.is_dict()) fail("Can only get item pairs from a mapping.");
  std::vector<Value> pairs;
  for (const auto& [key, value] : v.entries().items) pairs.push_back(Value::list({key, value}, Value::Sequence::Tuple));
  return generator(std::move(pairs));
}

Value f_map(Runtime& rt, const Value& v, CallArgs& args) {
  std::vector<Value> out;
  if (args.positional.empty()) {
    Signature sig("map", args, {"attribute", "default"});
    if (!sig.has(0)) fail("map requires a filter argument");
    const AttributeGetter getter(rt, sig.get(0), false, sig.has(1) ? std::optional<Value>(sig.get(1)) : std::nullopt);
    for (const Value& item : iterate(v)) out.push_back(getter(item));
    return generator(std::move(out));
  }
  const Value name = args.positional.front();
  if (!name.is_string()) fail("map requires a filter name");
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keywords = args.keywords;
  for (const Value& item : iterate(v)) {
    CallArgs call = rest;
    out.push_back(rt.filter(name.text(), item, call));
  }
  return generator(std::move(out));
}

Value min_or_max(Runtime& rt, const Value& v, CallArgs& args, bool max) {
  Signature sig(max ? "max" : "min", args, {"case_sensitive", "attribute"});
  const AttributeGetter key(rt, sig.get(1), !sig.flag(0, false));
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    const bool better = max ? less(key(items[best]), key(items[i])) : less(key(items[i]), key(items[best]));
    if (better) best = i;
  }
  return items[best];
}
Value f_min(Runtime& rt, const Value& v, CallArgs& args) { return min_or_max(rt, v, args, false); }
Value f_max(Runtime& rt, const Value& v, CallArgs& args) { return min_or_max(rt, v, args, true); }

// select / reject / selectattr / rejectattr (jinja2's prepare_select_or_reject).
Value select_or_reject(Runtime& rt, const Value& v, CallArgs& args, bool by_attribute, bool keep) {
  size_t offset = 0;
  std::optional<AttributeGetter> getter;
  if (by_attribute) {
    if (args.positional.empty()) fail("Missing parameter for attribute name");
    getter.emplace(rt, args.positional.front(), false);
    offset = 1;
  }
  std::optional<std::string> test;
  CallArgs test_args;
  if (args.positional.size() > offset) {
    if (!args.positional[offset].is_string()) fail("test name must be a string");
    test = args.positional[offset].text();
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(offset) + 1, args.positional.end());
    test_args.keywords = args.keywords;
  }
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    const Value subject = getter ? (*getter)(item) : item;
    CallArgs call = test_args;
    const bool passed = test ? rt.test(*test, subject, call) : subject.truthy();
    if (passed == keep) out.push_back(item);
  }
  return generator(std::move(out));
}
Value f_select(Runtime& rt, const Value& v, CallArgs& a) { return select_or_reject(rt, v, a, false, true); }
Value f_reject(Runtime& rt, const Value& v, CallArgs& a) { return select_or_reject(rt, v, a, false, false); }
Value f_selectattr(Runtime& rt, const Value& v, CallArgs& a) { return select_or_reject(rt, v, a, true, true); }
Value f_rejectattr(Runtime& rt, const Value& v, CallArgs& a) { return select_or_reject(rt, v, a, true, false); }

Value f_replace(Runtime& rt, const Value& v, CallArgs& args) {
  Signature sig("replace", args, {"old", "new", "count"}, 2);
  auto out = text::replace(v.str(), sig.get(0).str(), sig.get(1).str(), sig.integer(2).value_or(-1), rt.max_string_bytes());
  if (!out) fail("string too long");
  return text_value(rt, std::move(*out));
}

Value f_reverse(Runtime&, const Value& v, CallArgs& args) {
  Signature("reverse", args, {});
  if (v.is_string()) return get_slice(v, std::nullopt, std::nullopt, Value::integer(-1));
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  if (v.is_list()) return make_iterator(std::move(items), v.is_tuple() ? "reversed" : "list_reverseiterator");
  if (v.is_dict()) return make_iterator(std::move(items), "dict_reversekeyiterator");
  return Value::list(std::move(items));
}

// Python's round(x, ndigits): correctly rounded, ties to even on the exact binary value (as printf rounds).
double python_round(double value, int64_t digits) {
  if (!std::isfinite(value)) return value;
  if (digits > 300) return value;
  if (digits < -300) return 0.0 * value;
  char buffer[512];
  if (digits >= 0) {
    std::snprintf(buffer, sizeof buffer, "%.*f", static_cast<int>(digits), value);
    return std::strtod(buffer, nullptr);
  }
  const double scale = std::pow(10.0, static_cast<double>(-digits));
  return std::nearbyint(value / scale) * scale;
}

Value f_round(Runtime&, const Value& v, CallArgs& args) {
  Signature sig("round", args, {"precision", "method"});
  const int64_t precision = sig.integer(0).value_or(0);
  const std::string method = sig.string(1).value_or("common");
  if (method != "common" && method != "ceil" && method != "floor") fail("method must be common, ceil or floor");
  if (v.is_undefined()) v.fail_undefined();
  if (!v.is_number()) fail("type " + v.type_name() + " doesn't define __round__ method");
  if (method == "common") {
    if (!v.is_float() && precision >= 0) return Value::integer(v.as_int());
    return Value::number(python_round(v.as_double(), precision));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double scaled = v.as_double() * scale;
  return Value::number((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Value f_safe(Runtime&, const Value& v, CallArgs& args) {
  Signature("safe", args, {});
  return v.is_string() ? v : Value::string(v.str());
}

Value f_slice(Runtime&, const Value& v, CallArgs& args) {
  Signature sig("slice", args, {"slices", "fill_with"}, 1);
  const int64_t slices = sig.integer(0).value_or(0);
  if (slices <= 0 || slices > (1 << 20)) fail("slices must be positive");
  const std::vector<Value> items = iterate(v);
  const int64_t size = static_cast<int64_t>(items.size());
  const int64_t per_slice = size / slices, with_extra = size % slices;
  std::vector<Value> out;
  int64_t offset = 0;
  for (int64_t i = 0; i < slices; ++i) {
    const int64_t start = offset + i * per_slice;
    if (i < with_extra) ++offset;
    const int64_t end = offset + (i + 1) * per_slice;
    std::vector<Value> part(items.begin() + start, items.begin() + end);
    if (sig.has(1) && !sig.get(1).is_none() && i >= with_extra) part.push_back(sig.get(1));
    out.push_back(Value::list(std::move(part)));
  }
  return generator(std::move(out));
}

Value f_sort(Runtime& rt, const Value& v, CallArgs& args) {
  Signature sig("sort", args, {"reverse", "case_sensitive", "attribute"});
  const bool reverse = sig.flag(0, false);
  const AttributeGetter key(rt, sig.get(2), !sig.flag(1, false));
  std::vector<Value> items = iterate(v);
  std::vector<Value> keys;
  for (const Value& item : items) keys.push_back(key(item));
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  rt.charge(items.size() * 8);
  // sorted(reverse=True) keeps equal items in their order, like a stable sort on the reversed comparison.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return reverse ? less(keys[b], keys[a]) : less(keys[a], keys[b]); });
  std::vector<Value> out;
  for (size_t i : order) out.push_back(items[i]);
  return Value::list(std::move(out));
}

Value f_string(Runtime& rt, const Value& v, CallArgs& args) {
  Signature("string", args, {});
  return v.is_string() ? v : text_value(rt, v.str());
}

Value f_sum(Runtime& rt, const Value& v, CallArgs& args) {
  Signature sig("sum", args, {"attribute", "start"});
  const AttributeGetter getter(rt, sig.get(0), false);
  Value total = sig.get(1, Value::integer(0));
  for (const Value& item : iterate(v)) total = binary_operator(rt, "+", total, sig.has(0) ? getter(item) : item);
  return total;
}

Value f_title(Runtime& rt, const Value& v, CallArgs& args) {
  Signature("title", args, {});
  return text_value(rt, text::title_filter(v.str()));
}

Value f_trim(Runtime& rt, const Value& v, CallArgs& args) {
  Signature sig("trim", args, {"chars"});
  return text_value(rt, text::strip(v.str(), sig.string(0), true, true));
}

Value f_unique(Runtime& rt, const Value& v, CallArgs& args) {
  Signature sig("unique", args, {"case_sensitive", "attribute"});
  const AttributeGetter key(rt, sig.get(1), !sig.flag(0, false));
  std::map<std::string, bool> seen;
  std::vector<Value> out;
  for (const Value& item : iterate(v))
    if (seen.emplace(hash_key(key(item)), true).second) out.push_back(item);
  return generator(std::move(out));
}

Value f_wordcount(Runtime&, const Value& v, CallArgs& args) {
  Signature("wordcount", args, {});
  int64_t words = 0;
  bool in_word = false;
  for (char32_t c : text::code_points(v.str())) {
    const bool word_char = c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= 0x80 && !text::is_space(c) && text::is_printable(c));
    if (word_char && !in_word) ++words;
    in_word = word_char;
  }
  return Value::integer(words);
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
Value f_tojson(Runtime& rt, const Value& v, CallArgs& args) {
  Signature sig("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions options;
  options.ensure_ascii = sig.flag(0, false);
  const Value indent = sig.get(1, Value::none());
  if (indent.is_string()) options.indent = indent.text();
  else if (indent.is_int()) options.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(indent.as_int(), 0, 64)), ' ');
  else if (!indent.is_none()) fail("indent must be an int or a string");
  const Value separators = sig.get(2, Value::none());
  if (!separators.is_none()) {
    const std::vector<Value> parts = iterate(separators);
    if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string()) fail("separators must be two strings");
    options.separators = std::make_pair(parts[0].text(), parts[1].text());
  }
  options.sort_keys = sig.flag(3, false);
  return text_value(rt, to_json(v, options));
}

const std::map<std::string, FilterFunction>& filters() {
  static const std::map<std::string, FilterFunction> table = {
      {"abs", f_abs},         {"attr", f_attr},         {"batch", f_batch},       {"capitalize", f_capitalize},
      {"center", f_center},   {"count", f_length},      {"d", f_default},         {"default", f_default},
      {"dictsort", f_dictsort}, {"e", f_escape},        {"escape", f_escape},     {"forceescape", f_escape},
      {"first", f_first},     {"float", f_float},       {"format", f_format},     {"indent", f_indent},
      {"int", f_int},         {"join", f_join},         {"last", f_last},         {"length", f_length},
      {"list", f_list},       {"lower", f_lower},       {"items", f_items},       {"map", f_map},
      {"min", f_min},         {"max", f_max},           {"reject", f_reject},     {"rejectattr", f_rejectattr},
      {"replace", f_replace}, {"reverse", f_reverse},   {"round", f_round},       {"safe", f_safe},
      {"select", f_select},   {"selectattr", f_selectattr}, {"slice", f_slice},   {"sort", f_sort},
      {"string", f_string},   {"sum", f_sum},           {"title", f_title},       {"tojson", f_tojson},
      {"trim", f_trim},       {"unique", f_unique},     {"upper", f_upper},       {"wordcount", f_wordcount},
  };
  return table;
}

// ---- tests ----

using TestFunction = bool (*)(Runtime&, const Value&, CallArgs&);

Value one_argument(const char* name, CallArgs& args) { return Signature(name, args, {"other"}, 1).get(0); }

bool t_odd(Runtime& rt, const Value& v, CallArgs& args) {
  Signature(std::string("odd"), args, {});
  return equals(binary_operator(rt, "%", v, Value::integer(2)), Value::integer(1));
}
bool t_even(Runtime& rt, const Value& v, CallArgs& args) {
  Signature(std::string("even"), args, {});
  return equals(binary_operator(rt, "%", v, Value::integer(2)), Value::integer(0));
}
bool t_divisibleby(Runtime& rt, const Value& v, CallArgs& args) {
  return equals(binary_operator(rt, "%", v, one_argument("divisibleby", args)), Value::integer(0));
}
bool t_defined(Runtime&, const Value& v, CallArgs&) { return !v.is_undefined(); }
bool t_undefined(Runtime&, const Value& v, CallArgs&) { return v.is_undefined(); }
bool t_filter(Runtime&, const Value& v, CallArgs&) { return v.is_string() && has_filter(v.text()); }
bool t_test(Runtime&, const Value& v, CallArgs&) { return v.is_string() && has_test(v.text()); }
bool t_none(Runtime&, const Value& v, CallArgs&) { return v.is_none(); }
bool t_boolean(Runtime&, const Value& v, CallArgs&) { return v.is_bool(); }
bool t_false(Runtime&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool t_true(Runtime&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool t_integer(Runtime&, const Value& v, CallArgs&) { return v.is_int(); }
bool t_float(Runtime&, const Value& v, CallArgs&) { return v.is_float(); }
bool t_lower(Runtime&, const Value& v, CallArgs&) { return text::is_lower(v.str()); }
bool t_upper(Runtime&, const Value& v, CallArgs&) { return text::is_upper(v.str()); }
bool t_string(Runtime&, const Value& v, CallArgs&) { return v.is_string(); }
bool t_mapping(Runtime&, const Value& v, CallArgs&) { return v.is_dict(); }
bool t_number(Runtime&, const Value& v, CallArgs&) { return v.is_number(); }
// len() and __getitem__: strings, lists, tuples, dicts, and jinja2's Undefined (which defines both).
bool t_sequence(Runtime&, const Value& v, CallArgs&) {
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}
bool t_iterable(Runtime&, const Value& v, CallArgs&) {
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict() || (v.is_object() && v.object().iterable());
}
// Undefined defines __call__ (to raise), so callable() is true for it.
bool t_callable(Runtime&, const Value& v, CallArgs&) { return v.is_undefined() || (v.is_object() && v.object().callable()); }
bool t_sameas(Runtime&, const Value& v, CallArgs& args) {
  const Value other = one_argument("sameas", args);
  if (v.is_none() || v.is_bool()) return v.kind() == other.kind() && equals(v, other);
  return v.is_object() && other.is_object() && v.object_ptr() == other.object_ptr();
}
bool t_escaped(Runtime&, const Value&, CallArgs&) { return false; }
bool t_in(Runtime&, const Value& v, CallArgs& args) { return contains(one_argument("in", args), v); }
bool t_eq(Runtime&, const Value& v, CallArgs& args) { return equals(v, one_argument("eq", args)); }
bool t_ne(Runtime&, const Value& v, CallArgs& args) { return !equals(v, one_argument("ne", args)); }
bool t_gt(Runtime&, const Value& v, CallArgs& args) { return less(one_argument("gt", args), v); }
bool t_ge(Runtime&, const Value& v, CallArgs& args) { return !less(v, one_argument("ge", args)); }
bool t_lt(Runtime&, const Value& v, CallArgs& args) { return less(v, one_argument("lt", args)); }
bool t_le(Runtime&, const Value& v, CallArgs& args) { return !less(one_argument("le", args), v); }

const std::map<std::string, TestFunction>& tests() {
  static const std::map<std::string, TestFunction> table = {
      {"odd", t_odd},         {"even", t_even},         {"divisibleby", t_divisibleby}, {"defined", t_defined},
      {"undefined", t_undefined}, {"filter", t_filter}, {"test", t_test},         {"none", t_none},
      {"boolean", t_boolean}, {"false", t_false},       {"true", t_true},         {"integer", t_integer},
      {"float", t_float},     {"lower", t_lower},       {"upper", t_upper},       {"string", t_string},
      {"mapping", t_mapping}, {"number", t_number},     {"sequence", t_sequence}, {"iterable", t_iterable},
      {"callable", t_callable}, {"sameas", t_sameas},   {"escaped", t_escaped},   {"in", t_in},
      {"==", t_eq},           {"eq", t_eq},             {"equalto", t_eq},        {"!=", t_ne},
      {"ne", t_ne},           {">", t_gt},              {"gt", t_gt},             {"greaterthan", t_gt},
      {"ge", t_ge},           {">=", t_ge},             {"<", t_lt},              {"lt", t_lt},
      {"lessthan", t_lt},     {"<=", t_le},             {"le", t_le},
  };
  return table;
}

}  // namespace

bool has_filter(const std::string& name) { return filters().count(name) != 0; }

Value apply_filter(Runtime& runtime, const std::string& name, const Value& value, CallArgs& args) {
  const auto it = filters().find(name);
  if (it == filters().end()) fail("No filter named '" + name + "'.");
  return it->second(runtime, value, args);
}

bool has_test(const std::string& name) { return tests().count(name) != 0; }

bool apply_test(Runtime& runtime, const std::string& name, const Value& value, CallArgs& args) {
  const auto it = tests().find(name);
  if (it == tests().end()) fail("No test named '" + name + "' found.");
  return it->second(runtime, value, args);
}

Value make_iterator(std::vector<Value> items, const std::string& type_name) {
  return Value::object(std::make_shared<IteratorObject>(std::move(items), type_name));
}

}  // namespace qwen3vl::jinja
