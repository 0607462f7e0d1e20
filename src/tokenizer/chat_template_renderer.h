// A checkpoint's chat template, ready to render a parsed conversation (chat_template.h's ChatMessage) as
// transformers' apply_chat_template renders it with that template.
//
// A template byte-identical to a released Qwen3-VL one (stock_chat_templates.h) runs through the hand-written
// renderer of chat_template.h, which tests/fixtures/chat/expected.json proves equal to transformers; any other runs
// through the Jinja interpreter (jinja_template.h). The interpreter sees the messages as chat_messages_json() builds
// them from the parsed list, so the CLI, the server, eval and fine-tuning all give a template the same shape.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/chat_template.h"
#include "tokenizer/chat_template_json.h"
#include "tokenizer/jinja_template.h"

namespace qwen3vl {

// The tokenizer's named special tokens as transformers passes them to a template (special_tokens_map):
// ("bos_token", "<|endoftext|>"), ("eos_token", "<|im_end|>"), ...
using SpecialTokens = std::vector<std::pair<std::string, std::string>>;

class ChatTemplateRenderer {
 public:
  // The stock Instruct template: what a checkpoint without a chat template gets.
  ChatTemplateRenderer() = default;
  static ChatTemplateRenderer stock(ChatTemplateKind kind);
  // The template `text`, read from `source` (named in errors). Throws Error("<source>: chat template line N: ...")
  // for a template the interpreter cannot run.
  ChatTemplateRenderer(const std::string& text, const std::string& source, SpecialTokens special_tokens);

  // The prompt text. options.kind is ignored (the template decides). Throws Error for what the template or
  // transformers refuses (ChatTemplateRaised for the template's raise_exception), naming the template's source.
  std::string render(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options) const;

  // Thinking when the generation prompt pre-fills "<think>" (the reply starts inside the reasoning).
  ChatTemplateKind kind() const { return kind_; }
  // False on the hand-written fast path.
  bool interpreted() const { return interpreter_ != nullptr; }
  // Where the template came from ("the stock Qwen3-VL Instruct template" for the default).
  const std::string& source() const { return source_; }

 private:
  ChatTemplateKind kind_ = ChatTemplateKind::Instruct;
  std::shared_ptr<const JinjaTemplate> interpreter_;
  std::vector<std::pair<std::string, chat_json::Value>> special_tokens_;
  std::string source_ = "the stock Qwen3-VL Instruct template";
};

// The messages as a template sees them: role; content as a string, or a list of {"type": "text", "text": ...},
// {"type": "image"} and {"type": "video"} parts (absent when the message had none); tool_calls in OpenAI's shape
// ({"id", "type": "function", "function": {"name", "arguments"}}, arguments decoded JSON); tool_call_id;
// reasoning_content.
std::vector<chat_json::Value> chat_messages_json(const std::vector<ChatMessage>& messages);

}  // namespace qwen3vl
