#include "engine/reasoning.h"

#include <algorithm>

namespace qwen3vl {
namespace {

const std::string kOpen = "<think>";
const std::string kClose = "</think>";

std::string remove_all(std::string text, const std::string& tag) {
  std::string out;
  size_t from = 0;
  for (size_t at = text.find(tag); at != std::string::npos; at = text.find(tag, from)) {
    out.append(text, from, at - from);
    from = at + tag.size();
  }
  out.append(text, from, std::string::npos);
  return out;
}

std::string strip_newlines(const std::string& text, bool leading, bool trailing) {
  size_t begin = 0, end = text.size();
  if (leading)
    while (begin < end && text[begin] == '\n') ++begin;
  if (trailing)
    while (end > begin && text[end - 1] == '\n') --end;
  return text.substr(begin, end - begin);
}

// Length of the longest suffix of `text` that is a proper prefix of `tag`.
size_t partial_tag_suffix(const std::string& text, const std::string& tag) {
  for (size_t len = std::min(text.size(), tag.size() - 1); len > 0; --len)
    if (text.compare(text.size() - len, len, tag, 0, len) == 0) return len;
  return 0;
}

void append_piece(std::vector<ReplyPiece>& out, ReplyChannel channel, const std::string& text) {
  if (text.empty()) return;
  if (!out.empty() && out.back().channel == channel) {
    out.back().text += text;
  } else {
    out.push_back(ReplyPiece{channel, text});
  }
}

}  // namespace

ReasoningSplit split_reasoning(const std::string& reply) {
  ReasoningSplit split;
  const size_t close = reply.find(kClose);
  split.reasoning_finished = close != std::string::npos;
  split.reasoning = strip_newlines(remove_all(reply.substr(0, close), kOpen), true, true);
  if (split.reasoning_finished) split.answer = strip_newlines(reply.substr(close + kClose.size()), true, false);
  return split;
}

void ReasoningStream::emit_reasoning(const std::string& text, std::vector<ReplyPiece>& out) {
  std::string ready;
  for (char ch : text) {
    if (ch == '\n') {
      if (reasoning_started_) ++held_newlines_;  // leading newlines are dropped, trailing ones held
      continue;
    }
    reasoning_started_ = true;
    ready.append(held_newlines_, '\n');
    held_newlines_ = 0;
    ready += ch;
  }
  append_piece(out, ReplyChannel::Reasoning, ready);
}

void ReasoningStream::emit_answer(const std::string& text, std::vector<ReplyPiece>& out) {
  std::string ready = answer_started_ ? text : strip_newlines(text, true, false);
  if (!ready.empty()) answer_started_ = true;
  append_piece(out, ReplyChannel::Answer, ready);
}

std::vector<ReplyPiece> ReasoningStream::push(const std::string& text) {
  std::vector<ReplyPiece> out;
  if (in_answer_) {
    emit_answer(text, out);
    return out;
  }
  pending_ += text;
  const size_t close = pending_.find(kClose);
  if (close != std::string::npos) {
    emit_reasoning(remove_all(pending_.substr(0, close), kOpen), out);
    held_newlines_ = 0;  // the reasoning's trailing newlines
    in_answer_ = true;
    const std::string rest = pending_.substr(close + kClose.size());
    pending_.clear();
    emit_answer(rest, out);
    return out;
  }
  // A tail that may still grow into either tag waits. Since a tag can only start inside that held tail, removing
  // the complete "<think>" tags of the released text is the same as removing them from the whole reply.
  std::string ready = pending_;
  const size_t hold = std::max(partial_tag_suffix(ready, kOpen), partial_tag_suffix(ready, kClose));
  pending_ = ready.substr(ready.size() - hold);
  ready.resize(ready.size() - hold);
  emit_reasoning(remove_all(ready, kOpen), out);
  return out;
}

std::vector<ReplyPiece> ReasoningStream::finish() {
  std::vector<ReplyPiece> out;
  if (!in_answer_) {
    emit_reasoning(pending_, out);  // an incomplete tag at the very end is plain text
    pending_.clear();
    held_newlines_ = 0;  // the reasoning's trailing newlines
  }
  return out;
}

}  // namespace qwen3vl
