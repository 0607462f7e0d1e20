// The released Qwen3-VL chat templates, kept in the binary so that a checkpoint shipping one of them byte for byte
// can use the hand-written renderer of chat_template.h (which the goldens prove equal to it) instead of the
// interpreter.
#pragma once

#include <optional>
#include <string>

#include "tokenizer/chat_template.h"

namespace qwen3vl {

const std::string& stock_chat_template(ChatTemplateKind kind);

// Instruct or Thinking when `text` is that stock template (a trailing newline aside, which jinja2 drops).
std::optional<ChatTemplateKind> stock_chat_template_kind(const std::string& text);

}  // namespace qwen3vl
