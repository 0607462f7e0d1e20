// The lexer of the chat-template interpreter (jinja_template.h): jinja2's Lexer with the settings transformers
// compiles chat templates with (utils/chat_template_utils.py, _cached_compile_jinja_template): the default
// delimiters, trim_blocks=True (the newline after a block or comment tag is dropped), lstrip_blocks=True (spaces and
// tabs before a block or comment tag on its own line are dropped), `-` and `+` whitespace control, and no line
// statements. Like jinja2 it normalises newlines to "\n" and drops one trailing newline of the template.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace qwen3vl::jinja {

// A template that cannot be parsed (or uses a construct the interpreter does not support), at `line`.
class SyntaxError : public std::runtime_error {
 public:
  SyntaxError(int line, const std::string& message) : std::runtime_error(message), line_(line) {}
  int line() const { return line_; }

 private:
  int line_;
};

struct Token {
  enum class Type { Data, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, Eof };
  Type type = Type::Eof;
  std::string text;  // Data and String: the text (escapes decoded); Name and Operator: as written
  int64_t integer = 0;
  double number = 0.0;
  int line = 1;
};

// Splits a template into tokens ending with an Eof token. Throws SyntaxError for an unterminated comment or raw
// block, a character that starts no token, unbalanced brackets, or a bad string escape. `text` must be valid UTF-8.
std::vector<Token> tokenize(const std::string& text);

}  // namespace qwen3vl::jinja
