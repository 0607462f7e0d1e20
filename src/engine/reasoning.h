// Reasoning vs answer in the replies of Thinking checkpoints.
//
// The Thinking chat template ends the generation prompt with "<|im_start|>assistant\n<think>\n", so the model's
// reply starts INSIDE the think block: "reasoning...\n</think>\n\nanswer". The split follows the Qwen3 template's own
// reading of an assistant message (content.split('</think>') ... .strip('\n')):
//   reasoning = the text before the first "</think>", every "<think>" tag in it removed (a model may still emit
//               an opening tag; text before such a tag stays reasoning), newlines stripped at both ends;
//   answer    = the text after the first "</think>", leading newlines stripped (a later "</think>" stays text);
//   a reply that never closes "</think>" is all reasoning with an empty answer, flagged unfinished.
// The streaming variant routes text pieces as they arrive and produces exactly the same two strings.
#pragma once

#include <string>
#include <vector>

namespace qwen3vl {

struct ReasoningSplit {
  std::string reasoning;
  std::string answer;
  bool reasoning_finished = false;  // false: no "</think>" in the reply (e.g. it hit the token limit)
};

ReasoningSplit split_reasoning(const std::string& reply);

enum class ReplyChannel { Reasoning, Answer };

struct ReplyPiece {
  ReplyChannel channel;
  std::string text;
};

// Routes streamed reply text to reasoning or answer. Text that could still be part of a tag (a trailing "</thi")
// or newlines that may turn out to be the reasoning's trailing ones are held back until they are decided.
class ReasoningStream {
 public:
  // Adds generated text; returns the pieces that are now final (consecutive text of one channel merged).
  std::vector<ReplyPiece> push(const std::string& text);
  // End of the reply: releases what was held back.
  std::vector<ReplyPiece> finish();
  bool reasoning_finished() const { return in_answer_; }

 private:
  void emit_reasoning(const std::string& text, std::vector<ReplyPiece>& out);
  void emit_answer(const std::string& text, std::vector<ReplyPiece>& out);

  std::string pending_;          // undecided tail while in the reasoning
  bool in_answer_ = false;
  bool reasoning_started_ = false;
  size_t held_newlines_ = 0;     // newlines at the end of the reasoning emitted so far
  bool answer_started_ = false;
};

}  // namespace qwen3vl
