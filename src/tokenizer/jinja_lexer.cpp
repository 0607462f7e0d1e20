#include "tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <string_view>

#include "tokenizer/jinja_strings.h"
#include "tokenizer/unicode_text.h"

namespace qwen3vl::jinja {

namespace {

// jinja2's newline handling: "\r\n", "\r" and "\n" all become "\n", and one trailing newline is dropped
// (keep_trailing_newline=False).
std::string normalize_newlines(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out += '\n';
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out += text[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Length of the whitespace run (Python's \s, Unicode included) starting at `pos`.
size_t whitespace_run(std::string_view s, size_t pos) {
  size_t end = pos;
  while (end < s.size()) {
    size_t next = end;
    const char32_t c = unicode::next_code_point(s, next);
    if (!text::is_space(c)) break;
    end = next;
  }
  return end - pos;
}

// str.rstrip() with no argument.
std::string_view rstrip(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!text::is_space(unicode::next_code_point(s, pos))) break;
    end = start;
  }
  return s.substr(0, end);
}

bool is_name_start(unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; }
bool is_name_char(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

const char* const kOperators[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]",
                                  "(",  ")",  "{",  "}",  ">",  "<",  "=", ".", ":", "|", ",", ";"};

class Lexer {
 public:
  explicit Lexer(const std::string& text) : source_(normalize_newlines(text)) {}

  std::vector<Token> run() {
    while (pos_ < source_.size()) lex_data();
    push(Token::Type::Eof, "", line_);
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void fail(const std::string& message) const { throw SyntaxError(line_, message); }

  void push(Token::Type type, std::string text, int line) {
    Token token;
    token.type = type;
    token.text = std::move(text);
    token.line = line;
    tokens_.push_back(std::move(token));
  }

  // Moves to `end`, counting the newlines passed.
  void advance_to(size_t end) {
    line_ += static_cast<int>(std::count(source_.begin() + pos_, source_.begin() + end, '\n'));
    pos_ = end;
  }

  // Template text up to the next tag, with the whitespace control of that tag applied (jinja2's OptionalLStrip).
  void emit_data(size_t end, char sign, bool is_variable) {
    std::string_view text(source_.data() + pos_, end - pos_);
    if (sign == '-') {
      text = rstrip(text);
    } else if (sign != '+' && !is_variable) {  // lstrip_blocks
      const size_t line_begin = text.rfind('\n') + 1;  // npos + 1 == 0
      if ((line_begin > 0 || line_starting_) && line_begin < text.size() &&
          whitespace_run(text, line_begin) == text.size() - line_begin)
        text = text.substr(0, line_begin);
    }
    if (!text.empty()) push(Token::Type::Data, std::string(text), line_);
    advance_to(end);
  }

  // `{%` [-+] whitespace `raw` whitespace (`-%}` whitespace | `%}`) at `at`: the end of the match, or npos.
  size_t match_raw_begin(size_t at) const {
    size_t p = at + 2;
    if (p < source_.size() && (source_[p] == '-' || source_[p] == '+')) ++p;
    p += whitespace_run(source_, p);
    if (source_.compare(p, 3, "raw") != 0) return std::string::npos;
    p += 3;
    p += whitespace_run(source_, p);
    if (source_.compare(p, 3, "-%}") == 0) return p + 3 + whitespace_run(source_, p + 3);
    if (source_.compare(p, 2, "%}") == 0) return p + 2;
    return std::string::npos;
  }

  void lex_data() {
    size_t at = pos_;
    while ((at = source_.find('{', at)) != std::string::npos) {
      if (at + 1 < source_.size() && (source_[at + 1] == '{' || source_[at + 1] == '%' || source_[at + 1] == '#'))
        break;
      ++at;
    }
    if (at == std::string::npos) {
      push(Token::Type::Data, source_.substr(pos_), line_);
      advance_to(source_.size());
      return;
    }
    const char kind = source_[at + 1];
    const char sign = at + 2 < source_.size() && (source_[at + 2] == '-' || source_[at + 2] == '+') ? source_[at + 2] : 0;
    if (kind == '%') {
      const size_t raw_end = match_raw_begin(at);
      if (raw_end != std::string::npos) {
        emit_data(at, sign, false);
        advance_to(raw_end);
        line_starting_ = source_[raw_end - 1] == '\n';
        lex_raw();
        return;
      }
    }
    emit_data(at, sign, kind == '{');
    line_starting_ = false;
    const int line = line_;
    advance_to(at + 2 + (sign ? 1 : 0));
    if (kind == '#') {
      lex_comment();
    } else {
      push(kind == '{' ? Token::Type::VariableBegin : Token::Type::BlockBegin, "", line);
      lex_tag(kind == '{');
    }
  }

  // Drops the whitespace a tag end asks to drop: all of it after `-`, one newline after a block end (trim_blocks).
  void finish_tag(char sign, bool trims_newline) {
    if (sign == '-') {
      advance_to(pos_ + whitespace_run(source_, pos_));
    } else if (sign != '+' && trims_newline && pos_ < source_.size() && source_[pos_] == '\n') {
      advance_to(pos_ + 1);
    }
    line_starting_ = pos_ > 0 && source_[pos_ - 1] == '\n';
  }

  void lex_comment() {
    const size_t end = source_.find("#}", pos_);
    if (end == std::string::npos) fail("Missing end of comment tag");
    const char sign = end > pos_ && (source_[end - 1] == '-' || source_[end - 1] == '+') ? source_[end - 1] : 0;
    advance_to(end + 2);
    finish_tag(sign, true);
  }

  void lex_raw() {
    for (size_t at = source_.find("{%", pos_); at != std::string::npos; at = source_.find("{%", at + 1)) {
      size_t p = at + 2;
      const char sign = p < source_.size() && (source_[p] == '-' || source_[p] == '+') ? source_[p] : 0;
      if (sign) ++p;
      p += whitespace_run(source_, p);
      if (source_.compare(p, 6, "endraw") != 0) continue;
      p += 6;
      p += whitespace_run(source_, p);
      char end_sign = 0;
      if (source_.compare(p, 3, "+%}") == 0 || source_.compare(p, 3, "-%}") == 0) {
        end_sign = source_[p];
        ++p;
      } else if (source_.compare(p, 2, "%}") != 0) {
        continue;
      }
      emit_data(at, sign, false);
      advance_to(p + 2);
      finish_tag(end_sign, true);
      return;
    }
    fail("Missing end of raw directive");
  }

  // The tokens inside `{{ }}` or `{% %}`, up to and including the end delimiter.
  void lex_tag(bool is_variable) {
    const char* end = is_variable ? "}}" : "%}";
    std::vector<char> brackets;
    while (true) {
      if (pos_ >= source_.size()) return;  // the parser reports the missing end
      if (brackets.empty()) {
        char sign = 0;
        if ((source_[pos_] == '-' || (!is_variable && source_[pos_] == '+')) && source_.compare(pos_ + 1, 2, end) == 0)
          sign = source_[pos_];
        if (sign || source_.compare(pos_, 2, end) == 0) {
          push(is_variable ? Token::Type::VariableEnd : Token::Type::BlockEnd, "", line_);
          advance_to(pos_ + (sign ? 3 : 2));
          finish_tag(sign, !is_variable);
          return;
        }
      }
      const size_t space = whitespace_run(source_, pos_);
      if (space) {
        advance_to(pos_ + space);
        continue;
      }
      lex_token(brackets);
    }
  }

  void lex_token(std::vector<char>& brackets) {
    const unsigned char c = static_cast<unsigned char>(source_[pos_]);
    if (std::isdigit(c)) return lex_number();
    if (is_name_start(c)) {
      size_t end = pos_;
      while (end < source_.size() && is_name_char(static_cast<unsigned char>(source_[end]))) ++end;
      push(Token::Type::Name, source_.substr(pos_, end - pos_), line_);
      advance_to(end);
      return;
    }
    if (c == '\'' || c == '"') return lex_string();
    for (const char* op : kOperators) {
      const size_t size = std::char_traits<char>::length(op);
      if (source_.compare(pos_, size, op) != 0) continue;
      track_bracket(op[0], brackets);
      push(Token::Type::Operator, op, line_);
      advance_to(pos_ + size);
      return;
    }
    size_t next = pos_;
    std::string shown;
    unicode::append_utf8(shown, unicode::next_code_point(source_, next));
    fail("unexpected char '" + shown + "' at " + std::to_string(pos_));
  }

  void track_bracket(char c, std::vector<char>& brackets) {
    if (c == '(') brackets.push_back(')');
    if (c == '[') brackets.push_back(']');
    if (c == '{') brackets.push_back('}');
    if (c != ')' && c != ']' && c != '}') return;
    if (brackets.empty()) fail(std::string("unexpected '") + c + "'");
    if (brackets.back() != c) fail(std::string("unexpected '") + c + "', expected '" + brackets.back() + "'");
    brackets.pop_back();
  }

  // A run of digits in `base` where single underscores may separate digits: (_?D)+ after a prefix, (\d+_)*\d+
  // otherwise. Returns `p` when no digit follows.
  size_t digit_run(size_t p, int base, bool underscore_first) const {
    auto is_digit = [&](size_t at) {
      if (at >= source_.size()) return false;
      const int c = std::tolower(static_cast<unsigned char>(source_[at]));
      const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'z' ? c - 'a' + 10 : 99;
      return digit < base;
    };
    size_t end = p;
    while (true) {
      const bool underscore = (underscore_first || end > p) && end < source_.size() && source_[end] == '_';
      if (underscore && is_digit(end + 1)) {
        end += 2;
      } else if (is_digit(end)) {
        ++end;
      } else {
        return end;
      }
    }
  }

  void lex_number() {
    const size_t int_end = digit_run(pos_, 10, false);
    size_t end = int_end;
    if (pos_ == 0 || source_[pos_ - 1] != '.') {  // jinja2's float_re: (?<!\.)
      if (end + 1 < source_.size() && source_[end] == '.' && std::isdigit(static_cast<unsigned char>(source_[end + 1])))
        end = digit_run(end + 1, 10, false);
      if (end < source_.size() && (source_[end] == 'e' || source_[end] == 'E')) {
        size_t e = end + 1;
        if (e < source_.size() && (source_[e] == '+' || source_[e] == '-')) ++e;
        if (e < source_.size() && std::isdigit(static_cast<unsigned char>(source_[e]))) end = digit_run(e, 10, false);
      }
    }
    if (end != int_end) {
      std::string literal = source_.substr(pos_, end - pos_);
      literal.erase(std::remove(literal.begin(), literal.end(), '_'), literal.end());
      push(Token::Type::Float, literal, line_);
      tokens_.back().number = std::strtod(literal.c_str(), nullptr);
      advance_to(end);
      return;
    }
    lex_integer();
  }

  // jinja2's integer_re: 0b / 0o / 0x literals, decimals without a leading zero, and zero (as 0, 00, 0_0...).
  void lex_integer() {
    int base = 10;
    size_t begin = pos_, end = pos_;
    const char prefix = pos_ + 1 < source_.size() ? static_cast<char>(std::tolower(source_[pos_ + 1])) : 0;
    if (source_[pos_] == '0' && (prefix == 'b' || prefix == 'o' || prefix == 'x')) {
      base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : 16;
      begin = pos_ + 2;
      end = digit_run(begin, base, true);
    }
    if (end == begin) {  // no prefix (or a prefix without digits: then just the 0)
      base = 10;
      begin = pos_;
      end = source_[pos_] == '0' ? digit_run(pos_, 1, false) : digit_run(pos_, 10, false);
    }
    std::string literal = source_.substr(begin, end - begin);
    literal.erase(std::remove(literal.begin(), literal.end(), '_'), literal.end());
    errno = 0;
    const unsigned long long value = std::strtoull(literal.c_str(), nullptr, base);
    if (errno == ERANGE || value > static_cast<unsigned long long>(INT64_MAX))
      fail("integer literal " + source_.substr(pos_, end - pos_) + " is too large");
    push(Token::Type::Integer, source_.substr(pos_, end - pos_), line_);
    tokens_.back().integer = static_cast<int64_t>(value);
    advance_to(end);
  }

  void lex_string() {
    const char quote = source_[pos_];
    size_t end = pos_ + 1;
    while (end < source_.size() && source_[end] != quote) end += source_[end] == '\\' ? 2 : 1;
    if (end >= source_.size()) fail(std::string("unexpected char '") + quote + "' at " + std::to_string(pos_));
    const int line = line_;
    push(Token::Type::String, decode_escapes(std::string_view(source_).substr(pos_ + 1, end - pos_ - 1)), line);
    advance_to(end + 1);
  }

  // Python's unicode-escape codec, which jinja2 decodes string literals with.
  std::string decode_escapes(std::string_view s) const {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '\\' || i + 1 == s.size()) {
        out += s[i];
        continue;
      }
      const char c = s[++i];
      switch (c) {
        case '\n': break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': append_code_point(hex_escape(s, i, 2, "\\xXX"), out); break;
        case 'u': append_code_point(hex_escape(s, i, 4, "\\uXXXX"), out); break;
        case 'U': append_code_point(hex_escape(s, i, 8, "\\UXXXXXXXX"), out); break;
        case 'N': fail("named unicode escapes (\\N{...}) are not supported");
        default:
          if (c >= '0' && c <= '7') {
            char32_t value = static_cast<char32_t>(c - '0');
            for (int n = 1; n < 3 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++n)
              value = value * 8 + static_cast<char32_t>(s[++i] - '0');
            append_code_point(value, out);
          } else {
            out += '\\';
            out += c;
          }
      }
    }
    return out;
  }

  char32_t hex_escape(std::string_view s, size_t& i, int count, const char* form) const {
    char32_t value = 0;
    for (int n = 0; n < count; ++n) {
      if (i + 1 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])))
        fail(std::string("truncated ") + form + " escape");
      const char h = static_cast<char>(std::tolower(s[++i]));
      value = value * 16 + static_cast<char32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : h - 'a' + 10);
    }
    return value;
  }

  void append_code_point(char32_t c, std::string& out) const {
    if (c > 0x10FFFF) fail("illegal Unicode character");
    if (c >= 0xD800 && c <= 0xDFFF) fail("string literal holds a lone surrogate");
    unicode::append_utf8(out, c);
  }

  std::string source_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& text) { return Lexer(text).run(); }

}  // namespace qwen3vl::jinja
