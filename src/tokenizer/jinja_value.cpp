#include "tokenizer/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "tokenizer/chat_template_json.h"
#include "tokenizer/jinja_strings.h"
#include "tokenizer/unicode_text.h"

namespace qwen3vl::jinja {

namespace {

int nesting_of(const std::vector<Value>& items) {
  int deepest = 0;
  for (const Value& item : items) deepest = std::max(deepest, item.nesting());
  if (deepest + 1 > kMaxNesting) throw TemplateError("values are nested too deeply");
  return deepest + 1;
}

const std::vector<Value>& empty_items() {
  static const std::vector<Value> empty;
  return empty;
}

}  // namespace

Value Value::undefined(std::string hint) {
  Value v;
  if (!hint.empty()) v.text_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}

Value Value::boolean(bool value) {
  Value v;
  v.kind_ = Kind::Bool;
  v.boolean_ = value;
  return v;
}

Value Value::integer(int64_t value) {
  Value v;
  v.kind_ = Kind::Int;
  v.integer_ = value;
  return v;
}

Value Value::big_integer(std::string digits) {
  Value v;
  v.kind_ = Kind::Int;
  v.text_ = std::make_shared<const std::string>(std::move(digits));
  return v;
}

int64_t Value::as_int() const {
  if (kind_ == Kind::Bool) return static_cast<int64_t>(boolean_);
  if (text_ && kind_ == Kind::Int) throw TemplateError("integer overflow");
  return integer_;
}

Value Value::number(double value) {
  Value v;
  v.kind_ = Kind::Float;
  v.number_ = value;
  return v;
}

Value Value::string(std::string text) {
  Value v;
  v.kind_ = Kind::String;
  v.text_ = std::make_shared<const std::string>(std::move(text));
  return v;
}

Value Value::list(std::vector<Value> items, Sequence sequence) {
  Value v;
  v.kind_ = Kind::List;
  v.sequence_ = sequence;
  auto data = std::make_shared<ListData>();
  data->nesting = nesting_of(items);
  data->items = std::move(items);
  v.list_ = std::move(data);
  return v;
}

Value Value::dict(DictData data) {
  Value v;
  v.kind_ = Kind::Dict;
  int deepest = 0;
  for (const auto& [key, value] : data.items) deepest = std::max({deepest, key.nesting(), value.nesting()});
  if (deepest + 1 > kMaxNesting) throw TemplateError("values are nested too deeply");
  data.nesting = deepest + 1;
  v.dict_ = std::make_shared<const DictData>(std::move(data));
  return v;
}

Value Value::object(std::shared_ptr<Object> object) {
  Value v;
  v.kind_ = Kind::Object;
  v.object_ = std::move(object);
  return v;
}

bool Value::is_tuple() const { return kind_ == Kind::List && sequence_ == Sequence::Tuple; }

double Value::as_double() const {
  if (kind_ == Kind::Float) return number_;
  if (is_big_integer()) return std::strtod(text_->c_str(), nullptr);
  return static_cast<double>(as_int());
}

const std::vector<Value>& Value::items() const { return list_ ? list_->items : empty_items(); }

int Value::nesting() const {
  if (kind_ == Kind::List) return list_->nesting;
  if (kind_ == Kind::Dict) return dict_->nesting;
  return 0;
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return boolean_;
    case Kind::Int: return text_ || integer_ != 0;
    case Kind::Float: return number_ != 0.0;
    case Kind::String: return !text_->empty();
    case Kind::List: return !list_->items.empty();
    case Kind::Dict: return dict_->size() != 0;
    case Kind::Object: return object_->size().value_or(1) != 0;
  }
  return false;
}

std::string Value::str() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::String: return *text_;
    default: return repr();
  }
}

std::string Value::repr() const {
  switch (kind_) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "None";
    case Kind::Bool: return boolean_ ? "True" : "False";
    case Kind::Int: return text_ ? *text_ : std::to_string(integer_);
    case Kind::Float: return python_float_str(number_);
    case Kind::String: return python_string_repr(*text_);
    case Kind::List: {
      const bool tuple = sequence_ == Sequence::Tuple;
      std::string out = tuple ? "(" : "[";
      for (size_t i = 0; i < list_->items.size(); ++i) {
        if (i) out += ", ";
        out += list_->items[i].repr();
      }
      if (tuple && list_->items.size() == 1) out += ",";
      out += tuple ? ")" : "]";
      return out;
    }
    case Kind::Dict: {
      std::string out = "{";
      for (size_t i = 0; i < dict_->items.size(); ++i) {
        if (i) out += ", ";
        out += dict_->items[i].first.repr() + ": " + dict_->items[i].second.repr();
      }
      return out + "}";
    }
    case Kind::Object: return object_->repr();
  }
  return "";
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return sequence_ == Sequence::Tuple ? "tuple" : "list";
    case Kind::Dict: return "dict";
    case Kind::Object: return object_->type_name();
  }
  return "";
}

std::string Value::object_type_repr() const {
  if (kind_ == Kind::None) return "None";
  return type_name() + " object";
}

void Value::fail_undefined() const {
  throw TemplateError(text_ && !text_->empty() ? *text_ : "value is undefined");
}

const Value* DictData::find(const Value& key) const {
  const auto it = index_.find(hash_key(key));
  return it == index_.end() ? nullptr : &items[it->second].second;
}

const Value* DictData::find(const std::string& key) const {
  const auto it = index_.find("s" + key);
  return it == index_.end() ? nullptr : &items[it->second].second;
}

void DictData::set(const Value& key, Value value) {
  const auto [it, inserted] = index_.emplace(hash_key(key), items.size());
  if (inserted) {
    items.emplace_back(key, std::move(value));
  } else {
    items[it->second].second = std::move(value);
  }
}

Value Object::attribute(const std::string& name) {
  return Value::undefined("'" + type_name() + " object' has no attribute '" + name + "'");
}

Value Object::call(Runtime&, CallArgs&) { throw TemplateError("'" + type_name() + "' object is not callable"); }

std::vector<Value> Object::iterate() { throw TemplateError("'" + type_name() + "' object is not iterable"); }

bool equals(const Value& a, const Value& b) {
  using Kind = Value::Kind;
  if (a.is_big_integer() || b.is_big_integer()) {
    if (a.is_big_integer() && b.is_big_integer()) return a.text() == b.text();
    return (a.is_float() || b.is_float()) && a.as_double() == b.as_double();  // an int64 never equals a big one
  }
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::String: return a.text() == b.text();
    case Kind::List: {
      if (a.is_tuple() != b.is_tuple() || a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i)
        if (!equals(a.items()[i], b.items()[i])) return false;
      return true;
    }
    case Kind::Dict: {
      if (a.entries().size() != b.entries().size()) return false;
      for (const auto& [key, value] : a.entries().items) {
        const Value* other = b.entries().find(key);
        if (!other || !equals(value, *other)) return false;
      }
      return true;
    }
    case Kind::Object: return a.object_ptr() == b.object_ptr();
    default: return false;
  }
}

bool less(const Value& a, const Value& b) {
  if (a.is_undefined()) a.fail_undefined();
  if (b.is_undefined()) b.fail_undefined();
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float() || a.is_big_integer() || b.is_big_integer()) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.text() < b.text();  // UTF-8 byte order is code point order
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i])) continue;
      return less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw TemplateError("'<' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'");
}

std::string hash_key(const Value& key) {
  using Kind = Value::Kind;
  switch (key.kind()) {
    case Kind::Undefined: return "U";
    case Kind::None: return "N";
    case Kind::Bool:
    case Kind::Int: return "i" + (key.is_big_integer() ? key.text() : std::to_string(key.as_int()));
    case Kind::Float: {
      const double d = key.as_double();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) return "i" + std::to_string(int64_t(d));
      return "f" + python_float_str(d);
    }
    case Kind::String: return "s" + key.text();
    case Kind::List:
      if (key.is_tuple()) {
        std::string out = "t" + std::to_string(key.items().size());
        for (const Value& item : key.items()) {
          const std::string part = hash_key(item);
          out += ":" + std::to_string(part.size()) + ":" + part;
        }
        return out;
      }
      break;
    case Kind::Dict: break;
    case Kind::Object: {
      char address[32];
      std::snprintf(address, sizeof address, "o%p", static_cast<const void*>(key.object_ptr().get()));
      return address;
    }
  }
  throw TemplateError("unhashable type: '" + key.type_name() + "'");
}

std::vector<Value> iterate(const Value& value) {
  using Kind = Value::Kind;
  switch (value.kind()) {
    case Kind::Undefined: return {};
    case Kind::List: return value.items();
    case Kind::Dict: {
      std::vector<Value> keys;
      keys.reserve(value.entries().size());
      for (const auto& entry : value.entries().items) keys.push_back(entry.first);
      return keys;
    }
    case Kind::String: {
      std::vector<Value> chars;
      const std::string& s = value.text();
      for (size_t pos = 0; pos < s.size();) {
        const size_t start = pos;
        unicode::next_code_point(s, pos);
        chars.push_back(Value::string(s.substr(start, pos - start)));
      }
      return chars;
    }
    case Kind::Object:
      if (value.object().iterable()) return value.object().iterate();
      break;
    default: break;
  }
  throw TemplateError("'" + value.type_name() + "' object is not iterable");
}

int64_t length(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::Undefined: return 0;
    case Value::Kind::String: return text::length(value.text());
    case Value::Kind::List: return static_cast<int64_t>(value.items().size());
    case Value::Kind::Dict: return static_cast<int64_t>(value.entries().size());
    case Value::Kind::Object:
      if (const auto size = value.object().size()) return *size;
      [[fallthrough]];
    default: throw TemplateError("object of type '" + value.type_name() + "' has no len()");
  }
}

// CPython's unicode_repr.
std::string python_string_repr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  char hex[16];
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = unicode::next_code_point(s, pos);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < ' ' || c == 0x7F) {
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned>(c));
      out += hex;
    } else if (c < 0x7F || text::is_printable(c)) {
      unicode::append_utf8(out, c);
    } else {
      const char* format = c <= 0xFF ? "\\x%02x" : c <= 0xFFFF ? "\\u%04x" : "\\U%08x";
      std::snprintf(hex, sizeof hex, format, static_cast<unsigned>(c));
      out += hex;
    }
  }
  out += quote;
  return out;
}

std::string python_float_str(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return chat_json::python_float_repr(value);
}

namespace {

// json.dumps's py_encode_basestring (ensure_ascii=False) and py_encode_basestring_ascii.
void dump_json_string(const std::string& s, bool ensure_ascii, std::string& out) {
  out += '"';
  char hex[16];
  for (size_t pos = 0; pos < s.size();) {
    const unsigned char byte = static_cast<unsigned char>(s[pos]);
    if (byte >= 0x80 && !ensure_ascii) {
      out += s[pos++];
      continue;
    }
    const char32_t c = byte < 0x80 ? (++pos, byte) : unicode::next_code_point(s, pos);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
          if (c >= 0x10000) {
            const char32_t v = c - 0x10000;
            std::snprintf(hex, sizeof hex, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 | (v >> 10)),
                          static_cast<unsigned>(0xDC00 | (v & 0x3FF)));
          } else {
            std::snprintf(hex, sizeof hex, "\\u%04x", static_cast<unsigned>(c));
          }
          out += hex;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// json.dumps turns str, int, float, bool and None keys into strings and refuses the rest.
std::string json_key(const Value& key) {
  switch (key.kind()) {
    case Value::Kind::String: return key.text();
    case Value::Kind::None: return "null";
    case Value::Kind::Bool: return key.as_bool() ? "true" : "false";
    case Value::Kind::Int: return key.is_big_integer() ? key.text() : std::to_string(key.as_int());
    case Value::Kind::Float: return chat_json::python_float_repr(key.as_double());
    default: throw TemplateError("keys must be str, int, float, bool or None, not " + key.type_name());
  }
}

class JsonWriter {
 public:
  explicit JsonWriter(const JsonOptions& options) : options_(options) {
    if (options.separators) {
      item_separator_ = options.separators->first;
      key_separator_ = options.separators->second;
    } else {
      item_separator_ = options.indent ? "," : ", ";
      key_separator_ = ": ";
    }
  }

  void write(const Value& v, int level, std::string& out) {
    using Kind = Value::Kind;
    switch (v.kind()) {
      case Kind::None: out += "null"; return;
      case Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
      case Kind::Int: out += v.is_big_integer() ? v.text() : std::to_string(v.as_int()); return;
      case Kind::Float: out += chat_json::python_float_repr(v.as_double()); return;
      case Kind::String: dump_json_string(v.text(), options_.ensure_ascii, out); return;
      case Kind::List: write_list(v.items(), level, out); return;
      case Kind::Dict: write_dict(v.entries(), level, out); return;
      default: throw TemplateError("Object of type " + v.type_name() + " is not JSON serializable");
    }
  }

 private:
  void newline(int level, std::string& out) const {
    if (!options_.indent) return;
    out += '\n';
    for (int i = 0; i < level; ++i) out += *options_.indent;
  }

  void write_list(const std::vector<Value>& items, int level, std::string& out) {
    if (items.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += item_separator_;
      newline(level + 1, out);
      write(items[i], level + 1, out);
    }
    newline(level, out);
    out += ']';
  }

  void write_dict(const DictData& dict, int level, std::string& out) {
    if (dict.size() == 0) {
      out += "{}";
      return;
    }
    // sort_keys sorts the keys as they are (Python's sorted(dct.items())), before they become strings.
    std::vector<const std::pair<Value, Value>*> order;
    for (const auto& item : dict.items) order.push_back(&item);
    if (options_.sort_keys)
      std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) { return less(a->first, b->first); });
    std::vector<std::pair<std::string, const Value*>> members;
    members.reserve(dict.size());
    for (const auto* item : order) members.emplace_back(json_key(item->first), &item->second);
    out += '{';
    for (size_t i = 0; i < members.size(); ++i) {
      if (i) out += item_separator_;
      newline(level + 1, out);
      dump_json_string(members[i].first, options_.ensure_ascii, out);
      out += key_separator_;
      write(*members[i].second, level + 1, out);
    }
    newline(level, out);
    out += '}';
  }

  const JsonOptions& options_;
  std::string item_separator_;
  std::string key_separator_;
};

}  // namespace

std::string to_json(const Value& value, const JsonOptions& options) {
  std::string out;
  JsonWriter(options).write(value, 0, out);
  return out;
}

}  // namespace qwen3vl::jinja
