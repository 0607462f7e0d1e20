// Python's arithmetic and membership operators for the chat-template interpreter (jinja_builtins.h). Integers are
// 64-bit: where Python would grow a big integer, the template fails with "integer overflow".
#include <cmath>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_format.h"

namespace qwen3vl::jinja {

namespace {

[[noreturn]] void fail(const std::string& message) { throw TemplateError(message); }

[[noreturn]] void unsupported(const std::string& op, const Value& a, const Value& b) {
  fail("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
}

template <typename Operation>
int64_t checked(Operation operation, int64_t x, int64_t y) {
  int64_t result = 0;
  if (operation(x, y, &result)) fail("integer overflow");
  return result;
}
bool add_overflow(int64_t x, int64_t y, int64_t* r) { return __builtin_add_overflow(x, y, r); }
bool sub_overflow(int64_t x, int64_t y, int64_t* r) { return __builtin_sub_overflow(x, y, r); }
bool mul_overflow(int64_t x, int64_t y, int64_t* r) { return __builtin_mul_overflow(x, y, r); }

// CPython's float_rem and float_floor_div (Objects/floatobject.c).
double python_mod(double a, double b) {
  double mod = std::fmod(a, b);
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

double python_floor_div(double a, double b) {
  const double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0 && (b < 0) != (mod < 0)) div -= 1.0;
  if (div == 0.0) return std::copysign(0.0, a / b);
  const double floor_div = std::floor(div);
  return div - floor_div > 0.5 ? floor_div + 1.0 : floor_div;
}

int64_t int_power(int64_t base, int64_t exponent) {
  int64_t result = 1;
  while (exponent > 0) {
    if (exponent & 1) result = checked(mul_overflow, result, base);
    exponent >>= 1;
    if (exponent) base = checked(mul_overflow, base, base);
  }
  return result;
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  const bool floats = a.is_float() || b.is_float();
  if (!floats) {
    const int64_t x = a.as_int(), y = b.as_int();
    if (op == "+") return Value::integer(checked(add_overflow, x, y));
    if (op == "-") return Value::integer(checked(sub_overflow, x, y));
    if (op == "*") return Value::integer(checked(mul_overflow, x, y));
    if (op == "/") {
      if (y == 0) fail("division by zero");
      return Value::number(static_cast<double>(x) / static_cast<double>(y));
    }
    if (op == "//" || op == "%") {
      if (y == 0) fail("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) {
        if (op == "%") return Value::integer(0);
        fail("integer overflow");
      }
      int64_t quotient = x / y, remainder = x % y;
      if (remainder != 0 && ((remainder < 0) != (y < 0))) {
        quotient -= 1;
        remainder += y;
      }
      return Value::integer(op == "//" ? quotient : remainder);
    }
    if (op == "**") {
      if (y >= 0) return Value::integer(int_power(x, y));
      if (x == 0) fail("0.0 cannot be raised to a negative power");
      return Value::number(std::pow(static_cast<double>(x), static_cast<double>(y)));
    }
  }
  const double x = a.as_double(), y = b.as_double();
  if (op == "+") return Value::number(x + y);
  if (op == "-") return Value::number(x - y);
  if (op == "*") return Value::number(x * y);
  if (op == "/") {
    if (y == 0.0) fail("float division by zero");
    return Value::number(x / y);
  }
  if (op == "//") {
    if (y == 0.0) fail("float floor division by zero");
    return Value::number(python_floor_div(x, y));
  }
  if (op == "%") {
    if (y == 0.0) fail("float modulo");
    return Value::number(python_mod(x, y));
  }
  if (x == 0.0 && y < 0) fail("0.0 cannot be raised to a negative power");
  if (x < 0 && y != std::floor(y)) fail("a negative number raised to a fractional power is complex, which is not supported");
  return Value::number(std::pow(x, y));
}

// "ab" * 3, [1] * 2: the repeated sequence, bounded by the render's string limit.
Value repeat(Runtime& runtime, const Value& sequence, int64_t times) {
  if (times <= 0) return sequence.is_string() ? Value::string("") : Value::list({}, sequence.is_tuple() ? Value::Sequence::Tuple : Value::Sequence::List);
  const size_t unit = sequence.is_string() ? sequence.text().size() : sequence.items().size() * sizeof(Value);
  if (unit != 0 && static_cast<uint64_t>(times) > runtime.max_string_bytes() / unit) fail("repeated sequence too long");
  runtime.charge(unit * static_cast<uint64_t>(times) / 64);
  if (sequence.is_string()) {
    std::string out;
    out.reserve(unit * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += sequence.text();
    return Value::string(std::move(out));
  }
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), sequence.items().begin(), sequence.items().end());
  return Value::list(std::move(out), sequence.is_tuple() ? Value::Sequence::Tuple : Value::Sequence::List);
}

Value add(Runtime& runtime, const Value& a, const Value& b) {
  if (a.is_string() && b.is_string()) {
    if (a.text().size() + b.text().size() > runtime.max_string_bytes()) fail("string too long");
    runtime.charge((a.text().size() + b.text().size()) / 64);
    return Value::string(a.text() + b.text());
  }
  if (a.is_string()) fail("can only concatenate str (not \"" + b.type_name() + "\") to str");
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    std::vector<Value> items = a.items();
    items.insert(items.end(), b.items().begin(), b.items().end());
    runtime.charge(items.size() / 8);
    return Value::list(std::move(items), a.is_tuple() ? Value::Sequence::Tuple : Value::Sequence::List);
  }
  if (a.is_list()) fail("can only concatenate " + a.type_name() + " (not \"" + b.type_name() + "\") to " + a.type_name());
  unsupported("+", a, b);
}

}  // namespace

Value binary_operator(Runtime& runtime, const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) a.fail_undefined();
  if (b.is_undefined()) b.fail_undefined();
  if (a.is_number() && b.is_number()) return arithmetic(op, a, b);
  if (op == "+") return add(runtime, a, b);
  if (op == "*") {
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(runtime, a, b.as_int());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(runtime, b, a.as_int());
    if (a.is_string() || a.is_list() || b.is_string() || b.is_list())
      fail("can't multiply sequence by non-int of type '" + (a.is_string() || a.is_list() ? b : a).type_name() + "'");
  }
  if (op == "%" && a.is_string()) {
    std::string out = format_percent(a.text(), b);
    if (out.size() > runtime.max_string_bytes()) fail("string too long");
    return Value::string(std::move(out));
  }
  unsupported(op, a, b);
}

Value negate(const Value& value, bool minus) {
  if (value.is_undefined()) value.fail_undefined();
  if (value.is_float()) return Value::number(minus ? -value.as_double() : value.as_double());
  if (value.is_int() || value.is_bool()) {
    if (!minus) return Value::integer(value.as_int());
    if (value.as_int() == INT64_MIN) fail("integer overflow");
    return Value::integer(-value.as_int());
  }
  fail(std::string("bad operand type for unary ") + (minus ? "-" : "+") + ": '" + value.type_name() + "'");
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::String:
      if (!item.is_string())
        fail("'in <string>' requires string as left operand, not " + item.type_name());
      return container.text().find(item.text()) != std::string::npos;
    case Value::Kind::Dict: return container.entries().find(item) != nullptr;
    case Value::Kind::Undefined: return false;
    case Value::Kind::List:
      for (const Value& element : container.items())
        if (equals(element, item)) return true;
      return false;
    case Value::Kind::Object:
      if (container.object().iterable()) {
        for (const Value& element : container.object().iterate())
          if (equals(element, item)) return true;
        return false;
      }
      [[fallthrough]];
    default: fail("argument of type '" + container.type_name() + "' is not iterable");
  }
}

}  // namespace qwen3vl::jinja
