#include "tokenizer/chat_template_renderer.h"

#include "core/error.h"
#include "tokenizer/stock_chat_templates.h"

namespace qwen3vl {

namespace {

using Json = chat_json::Value;

Json json_string(const std::string& text) {
  Json value;
  value.kind = Json::Kind::String;
  value.text = text;
  return value;
}

Json json_object(std::vector<std::pair<std::string, Json>> members) {
  Json value;
  value.kind = Json::Kind::Object;
  value.members = std::move(members);
  return value;
}

Json json_array(std::vector<Json> items) {
  Json value;
  value.kind = Json::Kind::Array;
  value.items = std::move(items);
  return value;
}

Json content_json(const ChatMessage& message) {
  if (message.content_is_string) return json_string(message.content.empty() ? "" : message.content.front().text);
  std::vector<Json> parts;
  for (const ContentPart& part : message.content) {
    switch (part.type) {
      case ContentPart::Type::Text:
        parts.push_back(json_object({{"type", json_string("text")}, {"text", json_string(part.text)}}));
        break;
      case ContentPart::Type::Image: parts.push_back(json_object({{"type", json_string("image")}})); break;
      case ContentPart::Type::Video: parts.push_back(json_object({{"type", json_string("video")}})); break;
    }
  }
  return json_array(std::move(parts));
}

Json tool_call_json(const ToolCall& call, const std::string& where) {
  Json function = json_object({{"name", json_string(call.name)}});
  if (!call.arguments_json.empty()) function.members.emplace_back("arguments", chat_json::parse(call.arguments_json, where));
  std::vector<std::pair<std::string, Json>> members;
  if (!call.id.empty()) members.emplace_back("id", json_string(call.id));
  members.emplace_back("type", json_string("function"));
  members.emplace_back("function", std::move(function));
  return json_object(std::move(members));
}

// A one-turn probe: Thinking when its generation prompt ends inside an opened <think>.
ChatTemplateKind probe_kind(const ChatTemplateRenderer& renderer) {
  ChatMessage user;
  user.role = "user";
  user.content.push_back(ContentPart{ContentPart::Type::Text, "Hi"});
  ChatTemplateOptions options;
  options.add_generation_prompt = true;
  try {
    const std::string text = renderer.render({user}, options);
    const std::string tail = "<think>\n";
    if (text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0)
      return ChatTemplateKind::Thinking;
  } catch (const Error&) {
    // A template that refuses the probe (e.g. one that wants a system message) is not one that pre-fills.
  }
  return ChatTemplateKind::Instruct;
}

}  // namespace

std::vector<Json> chat_messages_json(const std::vector<ChatMessage>& messages) {
  std::vector<Json> out;
  out.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    std::vector<std::pair<std::string, Json>> members{{"role", json_string(message.role)}};
    if (!message.content_absent) members.emplace_back("content", content_json(message));
    if (!message.tool_calls.empty()) {
      std::vector<Json> calls;
      for (size_t j = 0; j < message.tool_calls.size(); ++j)
        calls.push_back(tool_call_json(message.tool_calls[j], "messages[" + std::to_string(i) + "].tool_calls[" +
                                                                  std::to_string(j) + "].arguments"));
      members.emplace_back("tool_calls", json_array(std::move(calls)));
    }
    if (!message.tool_call_id.empty()) members.emplace_back("tool_call_id", json_string(message.tool_call_id));
    if (!message.reasoning_content.empty())
      members.emplace_back("reasoning_content", json_string(message.reasoning_content));
    out.push_back(json_object(std::move(members)));
  }
  return out;
}

ChatTemplateRenderer ChatTemplateRenderer::stock(ChatTemplateKind kind) {
  ChatTemplateRenderer renderer;
  renderer.kind_ = kind;
  renderer.source_ = kind == ChatTemplateKind::Thinking ? "the stock Qwen3-VL Thinking template"
                                                        : "the stock Qwen3-VL Instruct template";
  return renderer;
}

ChatTemplateRenderer::ChatTemplateRenderer(const std::string& text, const std::string& source,
                                           SpecialTokens special_tokens)
    : source_(source) {
  if (const auto kind = stock_chat_template_kind(text)) {
    kind_ = *kind;
    return;
  }
  interpreter_ = std::make_shared<const JinjaTemplate>(JinjaTemplate::parse(text, source));
  for (auto& [name, token] : special_tokens) special_tokens_.emplace_back(name, json_string(token));
  kind_ = probe_kind(*this);
}

std::string ChatTemplateRenderer::render(const std::vector<ChatMessage>& messages,
                                         const ChatTemplateOptions& options) const {
  if (!interpreter_) {
    ChatTemplateOptions stock_options = options;
    stock_options.kind = kind_;
    return apply_chat_template(messages, stock_options);
  }
  ChatTemplateInputs inputs;
  try {
    inputs.messages = chat_messages_json(messages);
    if (!options.tools_json.empty()) {
      std::vector<Json> tools;
      for (size_t i = 0; i < options.tools_json.size(); ++i)
        tools.push_back(chat_json::parse(options.tools_json[i], "tools[" + std::to_string(i) + "]"));
      inputs.tools = json_array(std::move(tools));
    }
    inputs.add_generation_prompt = options.add_generation_prompt;
    inputs.special_tokens = special_tokens_;
    Json add_vision_id;
    add_vision_id.kind = Json::Kind::Bool;
    add_vision_id.boolean = options.add_vision_id;
    inputs.extra.emplace_back("add_vision_id", add_vision_id);
    return interpreter_->render(chat_template_variables(inputs));
  } catch (const ChatTemplateRaised&) {
    throw;
  } catch (const Error& e) {
    const std::string what = e.what();
    throw Error(what.rfind(source_, 0) == 0 ? what : source_ + ": " + what);
  }
}

}  // namespace qwen3vl
