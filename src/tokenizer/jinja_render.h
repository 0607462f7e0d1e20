// The evaluator of the chat-template interpreter (jinja_template.h): runs a parsed template (jinja_parser.h) with
// jinja2's scoping (a `set` inside a loop body or macro stays there, each loop iteration starts from the enclosing
// scope, macros see the scope they were defined in), under limits that bound its time, memory and stack.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <stdexcept>
#include <string>

#include "tokenizer/jinja_ast.h"

namespace qwen3vl::jinja {

struct RenderOptions {
  size_t max_output_bytes = size_t{64} << 20;  // also the longest string a template may build
  uint64_t max_work = 200'000'000;              // about one unit per operation and per 64 bytes of string built
  int max_depth = 400;                          // nested evaluations, macro calls included
  // The time strftime_now() formats: the local time when absent (as transformers' datetime.now()); tests pin it.
  std::optional<std::tm> clock;
};

// A render that failed at template line `line`; `raised` when the template called raise_exception(message).
class RenderFailure : public std::runtime_error {
 public:
  RenderFailure(int line, const std::string& message, bool raised)
      : std::runtime_error(message), line_(line), raised_(raised) {}
  int line() const { return line_; }
  bool raised() const { return raised_; }

 private:
  int line_;
  bool raised_;
};

// Renders `body` with `variables` as the template's context (messages, tools, add_generation_prompt, ...).
// Throws RenderFailure.
std::string render(const Body& body, const DictData& variables, const RenderOptions& options);

}  // namespace qwen3vl::jinja
