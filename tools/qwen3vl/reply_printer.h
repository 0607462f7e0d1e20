// How `qwen3vl run` prints a reply as it streams: as generated, or, for Thinking checkpoints, the reasoning to
// stderr (dimmed on a terminal) and the answer to stdout, split by engine/reasoning.h.
#pragma once

#include <cstdio>
#include <string>

#include "engine/reasoning.h"

namespace qwen3vl {
namespace cli {

class ReplyPrinter {
 public:
  // split: route reasoning and answer apart (the prompt ended inside "<think>"); otherwise print raw to `answer`.
  explicit ReplyPrinter(bool split, std::FILE* answer = stdout, std::FILE* reasoning = stderr);

  void print(const std::string& text);  // a streamed piece of the reply
  // End of the reply: releases held-back text, ends the reasoning line and notes a reasoning that never closed.
  void finish();

 private:
  void write_reasoning(const std::string& text);
  void write_answer(const std::string& text);

  bool split_;
  std::FILE* answer_;
  std::FILE* reasoning_;
  bool dim_;  // the reasoning stream is a terminal: print it dimmed
  ReasoningStream stream_;
  bool reasoning_open_ = false;  // reasoning text printed and its line not ended yet
};

}  // namespace cli
}  // namespace qwen3vl
