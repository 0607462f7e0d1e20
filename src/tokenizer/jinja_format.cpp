#include "tokenizer/jinja_format.h"

#include <cctype>
#include <cmath>
#include <cstdio>

#include "tokenizer/jinja_strings.h"
#include "tokenizer/unicode_text.h"

namespace qwen3vl::jinja {

namespace {

// Widths and precisions are capped so a template cannot ask for gigabytes of padding.
constexpr int64_t kMaxWidth = 1 << 16;

[[noreturn]] void fail(const std::string& message) { throw TemplateError(message); }

// Python's ascii(): repr() with every non-ASCII character escaped.
std::string ascii_repr(const Value& value) {
  const std::string repr = value.repr();
  std::string out;
  char hex[16];
  for (size_t pos = 0; pos < repr.size();) {
    const char32_t c = unicode::next_code_point(repr, pos);
    if (c < 0x80) {
      out += static_cast<char>(c);
      continue;
    }
    std::snprintf(hex, sizeof hex, c <= 0xFF ? "\\x%02x" : c <= 0xFFFF ? "\\u%04x" : "\\U%08x", static_cast<unsigned>(c));
    out += hex;
  }
  return out;
}

std::string pad_to(const std::string& text, int64_t width, char32_t fill, char align) {
  return text::pad(text, std::min(width, kMaxWidth), fill, align == '<' ? -1 : align == '^' ? 0 : 1);
}

// A C printf conversion of one number, e.g. c_format("%.*f", precision, value).
template <typename... Args>
std::string c_format(const char* format, Args... args) {
  char buffer[512];
  const int size = std::snprintf(buffer, sizeof buffer, format, args...);
  return std::string(buffer, static_cast<size_t>(std::max(0, std::min<int>(size, sizeof buffer - 1))));
}

// Python prints non-finite floats as inf / nan (upper case for the upper-case conversions), never "-nan".
std::optional<std::string> non_finite(double value, bool upper) {
  if (std::isfinite(value)) return std::nullopt;
  std::string text = std::isnan(value) ? "nan" : value < 0 ? "-inf" : "inf";
  return upper ? text::upper(text) : text;
}

std::string float_digits(double value, char type, int precision) {
  if (auto text = non_finite(value, std::isupper(static_cast<unsigned char>(type)))) return *text;
  const char format[] = {'%', '.', '*', type, '\0'};
  return c_format(format, precision, value);
}

// ---- printf style ----

struct PercentSpec {
  std::string flags;
  int64_t width = -1;
  int64_t precision = -1;
  char type = 's';
};

double as_real(const Value& value, char type) {
  if (value.is_number()) return value.as_double();
  fail(std::string("%") + type + " format: a real number is required, not " + value.type_name());
}

std::string percent_one(const PercentSpec& spec, const Value& value) {
  const bool left = spec.flags.find('-') != std::string::npos;
  const bool zero = spec.flags.find('0') != std::string::npos && !left;
  std::string sign = spec.flags.find('+') != std::string::npos ? "+" : spec.flags.find(' ') != std::string::npos ? " " : "";
  std::string body;
  bool numeric = true;
  switch (spec.type) {
    case 's':
    case 'r':
    case 'a':
      body = spec.type == 's' ? value.str() : spec.type == 'r' ? value.repr() : ascii_repr(value);
      if (spec.precision >= 0) {
        const std::vector<char32_t> cps = text::code_points(body);
        body = text::to_utf8(cps, 0, std::min<size_t>(cps.size(), static_cast<size_t>(spec.precision)));
      }
      numeric = false;
      break;
    case 'c':
      if (value.is_string() && text::length(value.text()) == 1) {
        body = value.text();
      } else if (value.is_int() && value.as_int() >= 0 && value.as_int() <= 0x10FFFF) {
        unicode::append_utf8(body, static_cast<char32_t>(value.as_int()));
      } else {
        fail("%c requires an int or a unicode character");
      }
      numeric = false;
      break;
    case 'd':
    case 'i':
    case 'u': {
      const double real = as_real(value, spec.type);
      if (!value.is_float()) {
        body = std::to_string(value.as_int());
      } else {
        if (!std::isfinite(real)) fail("cannot convert float " + python_float_str(real) + " to integer");
        body = c_format("%.0f", std::trunc(real));
      }
      break;
    }
    case 'x':
    case 'X':
    case 'o': {
      if (!value.is_int() && !value.is_bool())
        fail(std::string("%") + spec.type + " format: an integer is required, not " + value.type_name());
      const int64_t v = value.as_int();
      const uint64_t magnitude = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
      body = c_format(spec.type == 'x' ? "%llx" : spec.type == 'X' ? "%llX" : "%llo",
                      static_cast<unsigned long long>(magnitude));
      if (spec.flags.find('#') != std::string::npos) body = std::string(spec.type == 'o' ? "0o" : spec.type == 'x' ? "0x" : "0X") + body;
      if (v < 0) body = "-" + body;
      break;
    }
    default: {
      const int precision = spec.precision < 0 ? 6 : static_cast<int>(std::min<int64_t>(spec.precision, 100));
      body = float_digits(as_real(value, spec.type), spec.type, precision);
    }
  }
  if (numeric && body[0] != '-') body = sign + body;
  const int64_t size = text::length(body);
  if (spec.width <= size) return body;
  if (zero && numeric) {
    const size_t digits_at = body[0] == '-' || body[0] == '+' || body[0] == ' ' ? 1 : 0;
    body.insert(digits_at, std::string(static_cast<size_t>(std::min(spec.width, kMaxWidth) - size), '0'));
    return body;
  }
  return pad_to(body, spec.width, ' ', left ? '<' : '>');
}

int64_t read_number(const std::string& format, size_t& i) {
  int64_t value = 0;
  while (i < format.size() && std::isdigit(static_cast<unsigned char>(format[i])))
    value = std::min<int64_t>(value * 10 + (format[i++] - '0'), kMaxWidth);
  return value;
}

// ---- str.format ----

struct BraceSpec {
  char32_t fill = ' ';
  char align = 0;
  char sign = '-';
  bool alternate = false;
  bool zero = false;
  int64_t width = -1;
  char grouping = 0;
  int64_t precision = -1;
  char type = 0;
};

BraceSpec parse_brace_spec(const std::string& spec) {
  BraceSpec out;
  const std::vector<char32_t> cps = text::code_points(spec);
  size_t i = 0;
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (cps.size() >= 2 && is_align(cps[1])) {
    out.fill = cps[0];
    out.align = static_cast<char>(cps[1]);
    i = 2;
  } else if (!cps.empty() && is_align(cps[0])) {
    out.align = static_cast<char>(cps[0]);
    i = 1;
  }
  if (i < cps.size() && (cps[i] == '+' || cps[i] == '-' || cps[i] == ' ')) out.sign = static_cast<char>(cps[i++]);
  if (i < cps.size() && cps[i] == '#') out.alternate = (++i, true);
  if (i < cps.size() && cps[i] == '0') out.zero = (++i, true);
  auto number = [&] {
    int64_t value = 0;
    while (i < cps.size() && cps[i] >= '0' && cps[i] <= '9') value = std::min<int64_t>(value * 10 + (cps[i++] - '0'), kMaxWidth);
    return value;
  };
  if (i < cps.size() && cps[i] >= '0' && cps[i] <= '9') out.width = number();
  if (i < cps.size() && (cps[i] == ',' || cps[i] == '_')) out.grouping = static_cast<char>(cps[i++]);
  if (i < cps.size() && cps[i] == '.') {
    ++i;
    if (i >= cps.size() || cps[i] < '0' || cps[i] > '9') fail("Format specifier missing precision");
    out.precision = number();
  }
  if (i < cps.size()) out.type = static_cast<char>(cps[i++]);
  if (i < cps.size()) fail("Invalid format specifier '" + spec + "'");
  return out;
}

std::string group_digits(const std::string& digits, char separator) {
  std::string out;
  const size_t size = digits.size();
  for (size_t i = 0; i < size; ++i) {
    if (i && (size - i) % 3 == 0) out += separator;
    out += digits[i];
  }
  return out;
}

std::string format_number(const Value& value, const BraceSpec& spec) {
  std::string body;
  char type = spec.type;
  const bool is_integer = !value.is_float();
  if (is_integer && (type == 0 || type == 'd' || type == 'n')) {
    const int64_t v = value.as_int();
    const std::string digits = v < 0 ? std::to_string(v).substr(1) : std::to_string(v);
    body = (v < 0 ? "-" : "") + (spec.grouping ? group_digits(digits, spec.grouping) : digits);
  } else if (is_integer && (type == 'x' || type == 'X' || type == 'o' || type == 'b')) {
    const int64_t v = value.as_int();
    uint64_t magnitude = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    std::string digits;
    const unsigned base = type == 'o' ? 8 : type == 'b' ? 2 : 16;
    do {
      digits.insert(digits.begin(), "0123456789abcdef"[magnitude % base]);
      magnitude /= base;
    } while (magnitude);
    if (type == 'X') digits = text::upper(digits);
    const std::string prefix = spec.alternate ? std::string("0") + type : "";
    body = (v < 0 ? "-" : "") + prefix + digits;
  } else if (type == 'c' || type == 's') {
    fail(std::string("Unknown format code '") + type + "' for object of type '" + value.type_name() + "'");
  } else {
    const double real = value.as_double();
    const bool percent = type == '%';
    if (type == 0 && spec.precision < 0) {
      body = python_float_str(real);
    } else {
      if (type == 0 || type == 'n') type = 'g';
      const int precision = spec.precision < 0 ? 6 : static_cast<int>(std::min<int64_t>(spec.precision, 100));
      body = float_digits(percent ? real * 100 : real, percent ? 'f' : type, precision) + (percent ? "%" : "");
    }
  }
  if (body[0] != '-' && spec.sign != '-') body = std::string(1, spec.sign) + body;
  return body;
}

std::string format_with_spec(const Value& value, const std::string& spec_text) {
  if (spec_text.empty()) return value.str();
  const BraceSpec spec = parse_brace_spec(spec_text);
  std::string body;
  char align = spec.align;
  if (value.is_number() && !(value.is_bool() && spec.type == 0 && spec_text.empty())) {
    body = format_number(value, spec);
    if (!align) align = spec.zero ? '=' : '>';
  } else if (value.is_string() && (spec.type == 0 || spec.type == 's')) {
    body = value.text();
    if (spec.precision >= 0) {
      const std::vector<char32_t> cps = text::code_points(body);
      body = text::to_utf8(cps, 0, std::min<size_t>(cps.size(), static_cast<size_t>(spec.precision)));
    }
    if (!align) align = '<';
  } else {
    fail("unsupported format string passed to " + value.type_name() + ".__format__");
  }
  const int64_t size = text::length(body);
  if (spec.width <= size) return body;
  if (align == '=') {  // padding after the sign
    const char32_t fill = spec.zero && spec.align == 0 ? '0' : spec.fill;
    const size_t sign = body[0] == '-' || body[0] == '+' || body[0] == ' ' ? 1 : 0;
    return body.substr(0, sign) + pad_to(body.substr(sign), spec.width - static_cast<int64_t>(sign), fill, '>');
  }
  return pad_to(body, spec.width, spec.fill, align);
}

}  // namespace

std::string format_percent(const std::string& format, const Value& arguments) {
  const bool several = arguments.is_tuple();
  const std::vector<Value> values = several ? arguments.items() : std::vector<Value>{arguments};
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) fail("incomplete format");
    if (format[i] == '%') {
      out += '%';
      continue;
    }
    const Value* value = nullptr;
    Value looked_up;
    if (format[i] == '(') {
      const size_t close = format.find(')', i);
      if (close == std::string::npos) fail("incomplete format key");
      if (!arguments.is_dict()) fail("format requires a mapping");
      const Value* found = arguments.entries().find(format.substr(i + 1, close - i - 1));
      if (!found) fail("KeyError: '" + format.substr(i + 1, close - i - 1) + "'");
      looked_up = *found;
      value = &looked_up;
      used_mapping = true;
      i = close + 1;
    }
    PercentSpec spec;
    while (i < format.size() && std::string("#0- +").find(format[i]) != std::string::npos) spec.flags += format[i++];
    auto next_value = [&]() -> const Value& {
      if (next >= values.size()) fail("not enough arguments for format string");
      return values[next++];
    };
    if (i < format.size() && format[i] == '*') {
      ++i;
      spec.width = next_value().as_int();
    } else if (i < format.size() && std::isdigit(static_cast<unsigned char>(format[i]))) {
      spec.width = read_number(format, i);
    }
    if (i < format.size() && format[i] == '.') {
      ++i;
      if (i < format.size() && format[i] == '*') {
        ++i;
        spec.precision = next_value().as_int();
      } else {
        spec.precision = read_number(format, i);
      }
    }
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L')) ++i;
    if (i >= format.size()) fail("incomplete format");
    spec.type = format[i];
    if (std::string("sradiuxXoeEfFgGc").find(spec.type) == std::string::npos)
      fail(std::string("unsupported format character '") + spec.type + "'");
    out += percent_one(spec, value ? *value : next_value());
  }
  if (!used_mapping && next < values.size() && !(arguments.is_dict() && !several))
    fail("not all arguments converted during string formatting");
  return out;
}

std::string format_braces(const std::string& format, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  bool manual = false;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      fail("Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const size_t close = format.find('}', i);
    if (close == std::string::npos) fail("Single '{' encountered in format string");
    std::string field = format.substr(i + 1, close - i - 1);
    i = close;
    std::string spec;
    if (const size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.erase(colon);
    }
    char conversion = 0;
    if (const size_t bang = field.find('!'); bang != std::string::npos) {
      if (bang + 2 != field.size()) fail("expected ':' after conversion specifier");
      conversion = field[bang + 1];
      field.erase(bang);
    }
    if (field.find_first_of(".[{") != std::string::npos) fail("format fields with attribute or index access are not supported");
    Value value;
    if (field.empty()) {
      if (manual) fail("cannot switch from manual field specification to automatic field numbering");
      if (auto_index >= args.positional.size()) fail("Replacement index " + std::to_string(auto_index) + " out of range for positional args tuple");
      value = args.positional[auto_index++];
    } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
      manual = true;
      size_t at = 0;
      const int64_t index = read_number(field, at);
      if (at != field.size() || index >= static_cast<int64_t>(args.positional.size()))
        fail("Replacement index " + field + " out of range for positional args tuple");
      value = args.positional[static_cast<size_t>(index)];
    } else {
      bool found = false;
      for (const auto& [name, keyword] : args.keywords)
        if (name == field) value = keyword, found = true;
      if (!found) fail("KeyError: '" + field + "'");
    }
    if (conversion == 'r') value = Value::string(value.repr());
    else if (conversion == 's') value = Value::string(value.str());
    else if (conversion == 'a') value = Value::string(ascii_repr(value));
    else if (conversion) fail(std::string("Unknown conversion specifier ") + conversion);
    out += format_with_spec(value, spec);
  }
  return out;
}

}  // namespace qwen3vl::jinja
