#include "engine/prompt.h"

#include "core/error.h"

namespace qwen3vl {

std::vector<ChatMessage> single_turn(const std::string& system, const std::string& user, size_t image_count) {
  std::vector<ChatMessage> messages;
  auto text_message = [](const std::string& role, const std::string& text) {
    ChatMessage message;
    message.role = role;
    message.content.push_back(ContentPart{ContentPart::Type::Text, text});
    return message;
  };
  if (!system.empty()) messages.push_back(text_message("system", system));
  ChatMessage turn = text_message("user", user);
  if (image_count > 0) {
    turn.content_is_string = false;
    turn.content.insert(turn.content.begin(), image_count, ContentPart{ContentPart::Type::Image, ""});
  }
  messages.push_back(turn);
  return messages;
}

std::string expand_image_placeholders(const std::string& text, const std::vector<ProcessedImage>& images,
                                      int64_t merge_size) {
  static const std::string kPad = "<|image_pad|>";
  std::string out;
  size_t from = 0, used = 0;
  for (size_t at = text.find(kPad); at != std::string::npos; at = text.find(kPad, from)) {
    if (used == images.size())
      throw_error("the prompt has more image placeholders than the ", images.size(), " images given");
    out.append(text, from, at - from);
    for (int64_t k = 0; k < images[used].grid.merged_tokens(merge_size); ++k) out += kPad;
    ++used;
    from = at + kPad.size();
  }
  if (used != images.size())
    throw_error("the prompt has ", used, " image placeholders but ", images.size(), " images were given");
  return out + text.substr(from);
}

std::string render_chat(const LoadedModel& model, const std::vector<ChatMessage>& messages) {
  ChatTemplateOptions options;
  options.add_generation_prompt = true;
  return model.chat_template.render(messages, options);
}

std::vector<int32_t> encode_text(const LoadedModel& model, const std::string& text) {
  return model.tokenizer->encode(text);
}

}  // namespace qwen3vl
