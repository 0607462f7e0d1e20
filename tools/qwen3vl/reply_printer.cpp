#include "reply_printer.h"

#include <unistd.h>

namespace qwen3vl {
namespace cli {

ReplyPrinter::ReplyPrinter(bool split, std::FILE* answer, std::FILE* reasoning)
    : split_(split), answer_(answer), reasoning_(reasoning), dim_(isatty(fileno(reasoning)) != 0) {}

void ReplyPrinter::write_reasoning(const std::string& text) {
  if (dim_) std::fputs("\x1b[2m", reasoning_);
  std::fwrite(text.data(), 1, text.size(), reasoning_);
  if (dim_) std::fputs("\x1b[0m", reasoning_);
  std::fflush(reasoning_);
  reasoning_open_ = true;
}

void ReplyPrinter::write_answer(const std::string& text) {
  if (reasoning_open_) {  // the reasoning is over: end its line before the answer starts
    std::fputc('\n', reasoning_);
    std::fflush(reasoning_);
    reasoning_open_ = false;
  }
  std::fwrite(text.data(), 1, text.size(), answer_);
  std::fflush(answer_);
}

void ReplyPrinter::print(const std::string& text) {
  if (!split_) {
    write_answer(text);
    return;
  }
  for (const ReplyPiece& piece : stream_.push(text))
    piece.channel == ReplyChannel::Reasoning ? write_reasoning(piece.text) : write_answer(piece.text);
}

void ReplyPrinter::finish() {
  if (!split_) return;
  for (const ReplyPiece& piece : stream_.finish())
    piece.channel == ReplyChannel::Reasoning ? write_reasoning(piece.text) : write_answer(piece.text);
  if (reasoning_open_) std::fputc('\n', reasoning_);
  reasoning_open_ = false;
  if (!stream_.reasoning_finished())
    std::fprintf(reasoning_, "note: the reply never closed </think>: all of it is reasoning, the answer is empty\n");
  std::fflush(reasoning_);
}

}  // namespace cli
}  // namespace qwen3vl
