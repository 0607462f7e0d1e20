// The Qwen3-VL chat templates (Instruct and Thinking), written out in C++.
//
// apply_chat_template() returns exactly the text that transformers'
//   tokenizer.apply_chat_template(messages, tools=..., tokenize=False, add_generation_prompt=...,
//                                 add_vision_id=..., chat_template=<released Qwen3-VL template>)
// returns. The released Jinja templates are kept as test data in scripts/reference/templates/ and the goldens in
// tests/fixtures/chat/expected.json are rendered from them by scripts/reference/make_chat_goldens.py.
//
// The released templates do not reject anything themselves. A role other than system/user/assistant/tool is
// skipped, and so is a system message after the first one (Instruct). In a content list, only text, image and
// video items are rendered. The errors raised here are the cases where transformers fails too: an empty
// conversation, a tool call without arguments, a tool that is not a JSON object. Malformed input to
// parse_chat_messages is also an error.
#pragma once

#include <string>
#include <vector>

namespace qwen3vl {

struct ContentPart {
  enum class Type { Text, Image, Video };
  Type type = Type::Text;
  std::string text;  // Text parts only
};

struct ToolCall {
  std::string name;
  // The arguments as JSON text, normally an object. They are printed the way the template's `tojson`
  // prints them: Python json.dumps with ensure_ascii=False and ", " / ": " separators, key order kept.
  // If the text is a JSON string literal, its value is printed verbatim (the template's
  // `arguments is string` branch).
  std::string arguments_json;
  std::string id;  // OpenAI's call id, when given (some templates print it; Qwen3-VL's does not)
};

struct ChatMessage {
  std::string role;                  // system | user | assistant | tool
  std::vector<ContentPart> content;  // a plain string message is one Text part
  bool content_is_string = true;     // the template distinguishes `content is string` from a list — keep that
  // No content (absent or null): one empty Text part, which the Qwen3-VL templates print like "". transformers
  // drops the key, and other templates can tell the difference.
  bool content_absent = false;
  std::string tool_call_id;  // a tool message's OpenAI tool_call_id, when given
  std::vector<ToolCall> tool_calls;
  // Thinking template only. An empty string means "not given": the template then splits an inline
  // "<think>...</think>" off the content.
  std::string reasoning_content;
};

enum class ChatTemplateKind { Instruct, Thinking };

struct ChatTemplateOptions {
  ChatTemplateKind kind = ChatTemplateKind::Instruct;
  bool add_generation_prompt = true;
  bool add_vision_id = false;
  std::vector<std::string> tools_json;  // each tool as JSON text (an object), emitted as the template's `tool | tojson`
};

std::string apply_chat_template(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options);

// Parses an OpenAI-style messages JSON array (content string or list of {type:text|image|image_url|video|
// video_url,...}) into ChatMessage. Parts are classified the way the template does it ("image"/"image_url"
// key or type "image" -> Image, "video" key or type "video" -> Video, "text" key -> Text), and a
// "video_url" part becomes a Video too. Tool calls may be OpenAI-style ({"function": {...}}) or flat.
// Arguments may be an object or a JSON string holding one (which is parsed, as vLLM does); a tool call's "id" and a
// tool message's "tool_call_id" are kept. A missing or null content is an empty string (content_absent set).
// "reasoning_content" (or the aliases "thinking" / "reasoning", as transformers accepts them) fills
// reasoning_content. Throws qwen3vl::Error naming the offending field, e.g.
// "messages[2].content[0]: unsupported content part type 'audio'".
std::vector<ChatMessage> parse_chat_messages(const std::string& messages_json);

}  // namespace qwen3vl
