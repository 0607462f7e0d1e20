#include "tokenizer/chat_template_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string_view>
#include <system_error>

#include "core/error.h"

namespace qwen3vl::chat_json {

const Value* Value::find(const std::string& key) const {
  for (const auto& [name, value] : members) {
    if (name == key) return &value;
  }
  return nullptr;
}

namespace {

constexpr int kMaxDepth = 512;

using Members = std::vector<std::pair<std::string, Value>>;

// Python dict semantics for repeated keys: the last value wins, the key keeps its first position. Done once per
// object, through a stable sort of the member positions by key: O(n log n) for n members whatever the keys (a
// scan per member was O(n^2); a hash index with a fixed hash function can be flooded with colliding keys).
void merge_duplicate_keys(Members& members) {
  if (members.size() < 2) return;
  std::vector<size_t> order(members.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&members](size_t a, size_t b) { return members[a].first < members[b].first; });
  std::vector<bool> repeated(members.size(), false);
  bool any = false;
  for (size_t i = 0, j = 0; i < order.size(); i = j) {  // order[i..j) hold one key, in their text order
    for (j = i + 1; j < order.size() && members[order[j]].first == members[order[i]].first; ++j)
      repeated[order[j]] = true;
    if (j - i == 1) continue;
    members[order[i]].second = std::move(members[order[j - 1]].second);  // first position, last value
    any = true;
  }
  if (!any) return;
  size_t kept = 0;
  for (size_t i = 0; i < members.size(); ++i)
    if (!repeated[i]) {
      if (kept != i) members[kept] = std::move(members[i]);
      ++kept;
    }
  members.resize(kept);
}

class Parser {
 public:
  Parser(const std::string& text, const std::string& what) : text_(text), what_(what) {}

  Value parse_document() {
    skip_whitespace();
    Value value = parse_value(0);
    skip_whitespace();
    if (pos_ != text_.size()) fail("unexpected text after the JSON value");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw_error(what_, ": invalid JSON at offset ", pos_, ": ", message);
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_whitespace() {
    while (!at_end()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  void expect_literal(std::string_view literal) {
    if (text_.compare(pos_, literal.size(), literal) != 0) fail("unexpected character");
    pos_ += literal.size();
  }

  Value parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 512 levels");
    if (at_end()) fail("unexpected end of text");
    Value value;
    switch (peek()) {
      case '{':
        return parse_object(depth);
      case '[':
        return parse_array(depth);
      case '"':
        value.kind = Value::Kind::String;
        value.text = parse_string();
        return value;
      case 't':
        expect_literal("true");
        value.kind = Value::Kind::Bool;
        value.boolean = true;
        return value;
      case 'f':
        expect_literal("false");
        value.kind = Value::Kind::Bool;
        return value;
      case 'n':
        expect_literal("null");
        return value;
      default:
        return parse_number();
    }
  }

  Value parse_object(int depth) {
    Value value;
    value.kind = Value::Kind::Object;
    ++pos_;  // '{'
    skip_whitespace();
    if (peek() == '}') {
      ++pos_;
      return value;
    }
    while (true) {
      skip_whitespace();
      if (peek() != '"') fail("expected a string key");
      std::string key = parse_string();
      skip_whitespace();
      if (peek() != ':') fail("expected ':'");
      ++pos_;
      skip_whitespace();
      Value member = parse_value(depth + 1);
      value.members.emplace_back(std::move(key), std::move(member));
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        merge_duplicate_keys(value.members);
        return value;
      }
      fail("expected ',' or '}'");
    }
  }

  Value parse_array(int depth) {
    Value value;
    value.kind = Value::Kind::Array;
    ++pos_;  // '['
    skip_whitespace();
    if (peek() == ']') {
      ++pos_;
      return value;
    }
    while (true) {
      skip_whitespace();
      value.items.push_back(parse_value(depth + 1));
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return value;
      }
      fail("expected ',' or ']'");
    }
  }

  unsigned parse_hex4() {
    if (pos_ + 4 > text_.size()) fail("truncated \\u escape");
    unsigned code = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      code <<= 4;
      if (c >= '0' && c <= '9') code |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') code |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') code |= unsigned(c - 'A' + 10);
      else fail("invalid \\u escape");
    }
    return code;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated string");
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (at_end()) fail("unterminated string");
      const char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = parse_hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (text_.compare(pos_, 2, "\\u") != 0) fail("lone UTF-16 surrogate in \\u escape");
            pos_ += 2;
            const unsigned low = parse_hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("lone UTF-16 surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("lone UTF-16 surrogate in \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          fail("invalid escape in string");
      }
    }
  }

  // JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  Value parse_number() {
    const size_t start = pos_;
    auto digits = [&] {
      const size_t from = pos_;
      while (!at_end() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (digits() == 0) {
      fail("unexpected character");
    }
    bool is_float = false;
    if (peek() == '.') {
      ++pos_;
      if (digits() == 0) fail("expected digits after '.'");
      is_float = true;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (digits() == 0) fail("expected digits in exponent");
      is_float = true;
    }
    Value value;
    value.kind = is_float ? Value::Kind::Float : Value::Kind::Integer;
    value.text = text_.substr(start, pos_ - start);
    return value;
  }

  const std::string& text_;
  const std::string& what_;
  size_t pos_ = 0;
};

// float(text) for a JSON number literal, including overflow to +-inf and underflow to +-0 as Python does.
double python_float(const std::string& text) {
  double value = 0.0;
  const char* first = text.data();
  const char* last = first + text.size();
  const auto result = std::from_chars(first, last, value, std::chars_format::general);
  if (result.ec == std::errc()) return value;
  // Out of range: decide between overflow and underflow from the decimal magnitude.
  const bool negative = text[0] == '-';
  long long exponent = 0;
  const size_t e = text.find_first_of("eE");
  if (e != std::string::npos) {
    const char* p = text.data() + e + 1;
    if (*p == '+') ++p;
    long long parsed = 0;
    const auto r = std::from_chars(p, last, parsed);
    exponent = r.ec == std::errc() ? parsed : (*p == '-' ? -100000 : 100000);
  }
  const std::string mantissa = text.substr(negative ? 1 : 0, (e == std::string::npos ? text.size() : e) -
                                                                   (negative ? 1 : 0));
  const size_t dot = mantissa.find('.');
  const size_t first_nonzero = mantissa.find_first_of("123456789");
  long long magnitude = exponent;  // decimal position of the leading digit
  if (first_nonzero != std::string::npos) {
    const long long int_digits = dot == std::string::npos ? (long long)mantissa.size() : (long long)dot;
    magnitude += first_nonzero < (size_t)int_digits ? int_digits - (long long)first_nonzero
                                                    : int_digits - (long long)first_nonzero + 1;
  }
  const double huge = magnitude > 0 ? HUGE_VAL : 0.0;
  return negative ? -huge : huge;
}

void dump_string(const std::string& s, std::string& out) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xF];
        } else {
          out += ch;  // ensure_ascii=False: everything else, UTF-8 included, is copied as is
        }
    }
  }
  out += '"';
}

void dump(const Value& v, std::string& out) {
  switch (v.kind) {
    case Value::Kind::Null: out += "null"; break;
    case Value::Kind::Bool: out += v.boolean ? "true" : "false"; break;
    case Value::Kind::Integer:
      // Python prints int(text) exactly; the grammar excludes leading zeros and '+', so only "-0" changes.
      out += (v.text == "-0") ? "0" : v.text;
      break;
    case Value::Kind::Float: out += python_float_repr(python_float(v.text)); break;
    case Value::Kind::String: dump_string(v.text, out); break;
    case Value::Kind::Array:
      out += '[';
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i) out += ", ";
        dump(v.items[i], out);
      }
      out += ']';
      break;
    case Value::Kind::Object:
      out += '{';
      for (size_t i = 0; i < v.members.size(); ++i) {
        if (i) out += ", ";
        dump_string(v.members[i].first, out);
        out += ": ";
        dump(v.members[i].second, out);
      }
      out += '}';
      break;
  }
}

}  // namespace

Value parse(const std::string& text, const std::string& what) { return Parser(text, what).parse_document(); }

std::string dumps(const Value& value) {
  std::string out;
  dump(value, out);
  return out;
}

// CPython's float_repr_style 'short': the shortest digits that round-trip, printed in fixed notation when the
// decimal point position `decpt` (value = 0.d1d2... * 10^decpt) satisfies -4 < decpt <= 16, else as
// d.ddde[+-]XX; fixed notation always shows a fractional part (".0").
std::string python_float_repr(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string s(buf, result.ptr);  // shortest round-trip digits, e.g. "-1.2345e+02"
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s.erase(0, 1);
  }
  const size_t e = s.find('e');
  std::string digits = s.substr(0, e);
  if (digits.size() > 1) digits.erase(1, 1);  // drop the '.'
  const int exponent = std::stoi(s.substr(e + 1));
  if (digits == "0") return sign + "0.0";
  const int decpt = exponent + 1;
  const int n = static_cast<int>(digits.size());
  std::string out;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out = "0." + std::string(-decpt, '0') + digits;
    } else if (decpt >= n) {
      out = digits + std::string(decpt - n, '0') + ".0";
    } else {
      out = digits.substr(0, decpt) + "." + digits.substr(decpt);
    }
  } else {
    out = digits.substr(0, 1);
    if (n > 1) out += "." + digits.substr(1);
    const int x = decpt - 1;
    out += x < 0 ? "e-" : "e+";
    const std::string mag = std::to_string(x < 0 ? -x : x);
    out += (mag.size() < 2 ? "0" : "") + mag;
  }
  return sign + out;
}

}  // namespace qwen3vl::chat_json
