#include "engine/prompt.h"

namespace qwen3vl {

std::vector<ChatMessage> single_turn(const std::string& system, const std::string& user) {
  std::vector<ChatMessage> messages;
  auto text_message = [](const std::string& role, const std::string& text) {
    ChatMessage message;
    message.role = role;
    message.content.push_back(ContentPart{ContentPart::Type::Text, text});
    return message;
  };
  if (!system.empty()) messages.push_back(text_message("system", system));
  messages.push_back(text_message("user", user));
  return messages;
}

std::string render_chat(const LoadedModel& model, const std::vector<ChatMessage>& messages) {
  ChatTemplateOptions options;
  options.kind = model.template_kind;
  options.add_generation_prompt = true;
  return apply_chat_template(messages, options);
}

std::vector<int32_t> encode_text(const LoadedModel& model, const std::string& text) {
  return model.tokenizer->encode(text);
}

}  // namespace qwen3vl
