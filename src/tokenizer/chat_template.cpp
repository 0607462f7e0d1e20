// The two released Qwen3-VL chat templates, rendered without a Jinja engine. Comments quote the template
// parts (scripts/reference/templates/qwen3vl_instruct.jinja and qwen3vl_thinking.jinja) that each piece
// reproduces. Both run under transformers' Jinja environment (trim_blocks, lstrip_blocks), and every tag
// there trims its whitespace, so the output is just the literal strings below.
#include "tokenizer/chat_template.h"

#include <cstddef>
#include <string>

#include "core/error.h"
#include "tokenizer/chat_template_json.h"

namespace qwen3vl {
namespace {

using chat_json::Value;

constexpr const char* kImageTokens = "<|vision_start|><|image_pad|><|vision_end|>";
constexpr const char* kVideoTokens = "<|vision_start|><|video_pad|><|vision_end|>";

// {{- "# Tools\n\nYou may call ... <tools>" }} ... {{- "\n</tools>\n\nFor each function call, ..." }}
// (identical in both templates)
constexpr const char* kToolsHeader =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
constexpr const char* kToolsFooter =
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call><|im_end|>\n";

// image_count / video_count: namespace(value=0) in the templates.
struct VisionCounters {
  int images = 0;
  int videos = 0;
};

std::string msg_field(size_t index, const char* field) {
  return "messages[" + std::to_string(index) + "]" + field;
}

// A string content is one or more Text parts; images and videos need a list.
void validate_messages(const std::vector<ChatMessage>& messages) {
  // {%- if messages[0].role == ... %} on an empty list: jinja2 raises UndefinedError.
  if (messages.empty()) throw_error("messages: the conversation is empty");
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!messages[i].content_is_string) continue;
    for (const ContentPart& part : messages[i].content) {
      if (part.type != ContentPart::Type::Text) {
        throw_error(msg_field(i, ".content"), ": a string content cannot hold image or video parts");
      }
    }
  }
}

// `message.content` when it is a string.
std::string string_content(const ChatMessage& message) {
  std::string text;
  for (const ContentPart& part : message.content) text += part.text;
  return text;
}

// Jinja truthiness of `message.content`: a non-empty string, or a non-empty list.
bool content_is_truthy(const ChatMessage& message) {
  return message.content_is_string ? !string_content(message).empty() : !message.content.empty();
}

// Only the text items of a list:
//   {%- for content in messages[0].content %}{%- if 'text' in content %}{{- content.text }}{%- endif %}
std::string text_items_only(const ChatMessage& message) {
  if (message.content_is_string) return string_content(message);
  std::string text;
  for (const ContentPart& part : message.content) {
    if (part.type == ContentPart::Type::Text) text += part.text;
  }
  return text;
}

// The vision-aware content loop. Instruct inlines it for user and tool messages (always counting); Thinking
// has it as `macro render_content(content, do_vision_count)`:
//   image -> {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}<|vision_start|>...
//   video -> {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}<|vision_start|>...
//   text  -> {{- item.text }}
std::string render_content(const ChatMessage& message, bool do_vision_count, bool add_vision_id,
                           VisionCounters& counters) {
  if (message.content_is_string) return string_content(message);
  std::string out;
  for (const ContentPart& part : message.content) {
    switch (part.type) {
      case ContentPart::Type::Image:
        if (do_vision_count) ++counters.images;
        if (add_vision_id) out += "Picture " + std::to_string(counters.images) + ": ";
        out += kImageTokens;
        break;
      case ContentPart::Type::Video:
        if (do_vision_count) ++counters.videos;
        if (add_vision_id) out += "Video " + std::to_string(counters.videos) + ": ";
        out += kVideoTokens;
        break;
      case ContentPart::Type::Text:
        out += part.text;
        break;
    }
  }
  return out;
}

// {%- for tool in tools %}{{- "\n" }}{{- tool | tojson }}{%- endfor %}
std::string render_tools(const std::vector<std::string>& tools_json) {
  std::string out = kToolsHeader;
  for (size_t i = 0; i < tools_json.size(); ++i) {
    const std::string what = "tools[" + std::to_string(i) + "]";
    const Value tool = chat_json::parse(tools_json[i], what);
    // transformers accepts only dicts (JSON schemas) or Python callables as tools.
    if (!tool.is_object()) throw_error(what, ": a tool must be a JSON object");
    out += "\n";
    out += chat_json::dumps(tool);
  }
  out += kToolsFooter;
  return out;
}

// One tool call (same in both templates):
//   {{- '<tool_call>\n{"name": "' }}{{- tool_call.name }}{{- '", "arguments": ' }}
//   {%- if tool_call.arguments is string %}{{- tool_call.arguments }}{%- else %}{{- tool_call.arguments | tojson }}
//   {{- '}\n</tool_call>' }}
std::string render_tool_call(const ToolCall& call, size_t message_index, size_t call_index) {
  const std::string what = msg_field(message_index, ".tool_calls[") + std::to_string(call_index) + "].arguments";
  // `tool_call.arguments | tojson` on an undefined value fails in transformers (Undefined is not JSON).
  if (call.arguments_json.empty()) throw_error(what, ": missing (expected JSON text, e.g. {})");
  const Value arguments = chat_json::parse(call.arguments_json, what);
  std::string out = "<tool_call>\n{\"name\": \"" + call.name + "\", \"arguments\": ";
  out += arguments.is_string() ? arguments.text : chat_json::dumps(arguments);
  out += "}\n</tool_call>";
  return out;
}

// The tool branch shared by both templates, given the message's rendered content:
//   {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}{{- '<|im_start|>user' }}{%- endif %}
//   {{- '\n<tool_response>\n' }} content {{- '\n</tool_response>' }}
//   {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}{{- '<|im_end|>\n' }}{%- endif %}
void render_tool_message(const std::vector<ChatMessage>& messages, size_t i, const std::string& content,
                         std::string& out) {
  if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
  out += "\n<tool_response>\n";
  out += content;
  out += "\n</tool_response>";
  if (i + 1 == messages.size() || messages[i + 1].role != "tool") out += "<|im_end|>\n";
}

// ---------------------------------------------------------------------------------------------------------
// Instruct (Qwen/Qwen3-VL-*-Instruct)

std::string render_instruct(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options) {
  std::string out;
  const ChatMessage& first = messages.front();
  if (!options.tools_json.empty()) {
    // {%- if tools %} <|im_start|>system\n [system text + '\n\n'] # Tools ... <|im_end|>\n
    out += "<|im_start|>system\n";
    if (first.role == "system") out += text_items_only(first) + "\n\n";
    out += render_tools(options.tools_json);
  } else if (first.role == "system") {
    // {{- '<|im_start|>system\n' }} text items {{- '<|im_end|>\n' }}
    out += "<|im_start|>system\n" + text_items_only(first) + "<|im_end|>\n";
  }

  VisionCounters counters;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    if (message.role == "user") {
      out += "<|im_start|>user\n";
      out += render_content(message, /*do_vision_count=*/true, options.add_vision_id, counters);
      out += "<|im_end|>\n";
    } else if (message.role == "assistant") {
      // {{- '<|im_start|>' + message.role + '\n' }} then the string, or the text items of a list
      out += "<|im_start|>assistant\n";
      out += text_items_only(message);
      for (size_t j = 0; j < message.tool_calls.size(); ++j) {
        // {%- if (loop.first and message.content) or (not loop.first) %}{{- '\n' }}
        if (j > 0 || content_is_truthy(message)) out += "\n";
        out += render_tool_call(message.tool_calls[j], i, j);
      }
      out += "<|im_end|>\n";
    } else if (message.role == "tool") {
      render_tool_message(messages, i,
                          render_content(message, /*do_vision_count=*/true, options.add_vision_id, counters), out);
    }
    // Any other role, a system message included, has no branch in the loop and is skipped.
  }
  // {%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}
  if (options.add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Thinking (Qwen/Qwen3-VL-*-Thinking)

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
// Python str.lstrip('\n') / rstrip('\n') / strip('\n')
std::string lstrip_newlines(const std::string& s) {
  const size_t b = s.find_first_not_of('\n');
  return b == std::string::npos ? std::string() : s.substr(b);
}
std::string rstrip_newlines(const std::string& s) {
  const size_t e = s.find_last_not_of('\n');
  return e == std::string::npos ? std::string() : s.substr(0, e + 1);
}
std::string strip_newlines(const std::string& s) { return lstrip_newlines(rstrip_newlines(s)); }
// Python s.split(sep)[0] and s.split(sep)[-1]
std::string before_first(const std::string& s, const std::string& sep) {
  const size_t p = s.find(sep);
  return p == std::string::npos ? s : s.substr(0, p);
}
std::string after_last(const std::string& s, const std::string& sep) {
  const size_t p = s.rfind(sep);
  return p == std::string::npos ? s : s.substr(p + sep.size());
}

std::string render_thinking(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options) {
  std::string out;
  VisionCounters counters;
  const bool vid = options.add_vision_id;
  const ChatMessage& first = messages.front();
  if (!options.tools_json.empty()) {
    // {{- render_content(messages[0].content, false) + '\n\n' }} inside the tools system block
    out += "<|im_start|>system\n";
    if (first.role == "system") out += render_content(first, false, vid, counters) + "\n\n";
    out += render_tools(options.tools_json);
  } else if (first.role == "system") {
    // {{- '<|im_start|>system\n' + render_content(messages[0].content, false) + '<|im_end|>\n' }}
    out += "<|im_start|>system\n" + render_content(first, false, vid, counters) + "<|im_end|>\n";
  }

  // ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1); scanning backwards, the last
  // user message that is not a wrapped '<tool_response>...</tool_response>' is the current query.
  size_t last_query_index = messages.size() - 1;
  for (size_t k = messages.size(); k-- > 0;) {
    if (messages[k].role != "user") continue;
    const std::string content = render_content(messages[k], false, vid, counters);
    if (!(starts_with(content, "<tool_response>") && ends_with(content, "</tool_response>"))) {
      last_query_index = k;
      break;
    }
  }

  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    const bool is_last = i + 1 == messages.size();
    // {%- set content = render_content(message.content, True) %}: counts the vision items of every message,
    // whatever its role (the first system message included, though it is not printed again).
    std::string content = render_content(message, true, vid, counters);
    if (message.role == "user" || (message.role == "system" && i != 0)) {
      out += "<|im_start|>" + message.role + "\n" + content + "<|im_end|>\n";
    } else if (message.role == "assistant") {
      std::string reasoning;
      if (!message.reasoning_content.empty()) {
        // {%- if message.reasoning_content is string %}
        reasoning = message.reasoning_content;
      } else if (content.find("</think>") != std::string::npos) {
        // content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
        reasoning = lstrip_newlines(after_last(rstrip_newlines(before_first(content, "</think>")), "<think>"));
        // content.split('</think>')[-1].lstrip('\n')
        content = lstrip_newlines(after_last(content, "</think>"));
      }
      if (i > last_query_index && (is_last || !reasoning.empty())) {
        // '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n'
        //   + content.lstrip('\n')
        out += "<|im_start|>assistant\n<think>\n" + strip_newlines(reasoning) + "\n</think>\n\n" +
               lstrip_newlines(content);
      } else {
        out += "<|im_start|>assistant\n" + content;
      }
      for (size_t j = 0; j < message.tool_calls.size(); ++j) {
        // {%- if (loop.first and content) or (not loop.first) %}: here `content` is the local string
        if (j > 0 || !content.empty()) out += "\n";
        out += render_tool_call(message.tool_calls[j], i, j);
      }
      out += "<|im_end|>\n";
    } else if (message.role == "tool") {
      render_tool_message(messages, i, content, out);
    }
    // Other roles, and the first system message, print nothing here.
  }
  // {%- if add_generation_prompt %}{{- '<|im_start|>assistant\n<think>\n' }}
  if (options.add_generation_prompt) out += "<|im_start|>assistant\n<think>\n";
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// parse_chat_messages

const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::Null: return "null";
    case Value::Kind::Bool: return "a boolean";
    case Value::Kind::Integer:
    case Value::Kind::Float: return "a number";
    case Value::Kind::String: return "a string";
    case Value::Kind::Array: return "an array";
    case Value::Kind::Object: return "an object";
  }
  return "?";
}

ContentPart parse_content_part(const Value& item, const std::string& where) {
  if (!item.is_object()) throw_error(where, ": expected a content part object, got ", kind_name(item.kind));
  const Value* type = item.find("type");
  const std::string type_name = (type && type->is_string()) ? type->text : std::string();
  ContentPart part;
  // Same order as the template: image first, then video, then text.
  if (item.find("image") || item.find("image_url") || type_name == "image") {
    part.type = ContentPart::Type::Image;
  } else if (item.find("video") || type_name == "video" || item.find("video_url") || type_name == "video_url") {
    part.type = ContentPart::Type::Video;
  } else if (const Value* text = item.find("text")) {
    if (!text->is_string()) throw_error(where, ".text: expected a string, got ", kind_name(text->kind));
    part.type = ContentPart::Type::Text;
    part.text = text->text;
  } else if (type_name == "text") {
    throw_error(where, ": text part without a \"text\" field");
  } else if (type && type->is_string()) {
    throw_error(where, ": unsupported content part type '", type_name,
                "' (expected text, image, image_url, video or video_url)");
  } else {
    throw_error(where, ": content part has no type and no text, image or video field");
  }
  return part;
}

ToolCall parse_tool_call(const Value& call, const std::string& where) {
  if (!call.is_object()) throw_error(where, ": expected a tool call object, got ", kind_name(call.kind));
  // {%- if tool_call.function %}{%- set tool_call = tool_call.function %}
  const Value* function = call.find("function");
  const bool nested = function && function->is_object() && !function->members.empty();
  const Value& fields = nested ? *function : call;
  const std::string prefix = nested ? where + ".function" : where;
  ToolCall out;
  if (const Value* id = call.find("id"); id && !id->is_null()) {
    if (!id->is_string()) throw_error(where, ".id: expected a string, got ", kind_name(id->kind));
    out.id = id->text;
  }
  const Value* name = fields.find("name");
  if (!name || !name->is_string()) throw_error(prefix, ".name: missing or not a string");
  out.name = name->text;
  const Value* arguments = fields.find("arguments");
  if (!arguments || arguments->is_null()) throw_error(prefix, ".arguments: missing");
  if (arguments->is_string()) {
    // OpenAI sends arguments as a JSON string; decode it to the object the template's tojson expects.
    out.arguments_json = chat_json::dumps(chat_json::parse(arguments->text, prefix + ".arguments"));
  } else {
    out.arguments_json = chat_json::dumps(*arguments);
  }
  return out;
}

}  // namespace

std::string apply_chat_template(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options) {
  validate_messages(messages);
  return options.kind == ChatTemplateKind::Thinking ? render_thinking(messages, options)
                                                    : render_instruct(messages, options);
}

std::vector<ChatMessage> parse_chat_messages(const std::string& messages_json) {
  const Value root = chat_json::parse(messages_json, "messages");
  if (!root.is_array()) throw_error("messages: expected a JSON array of messages, got ", kind_name(root.kind));
  std::vector<ChatMessage> messages;
  messages.reserve(root.items.size());
  for (size_t i = 0; i < root.items.size(); ++i) {
    const Value& m = root.items[i];
    const std::string where = msg_field(i, "");
    if (!m.is_object()) throw_error(where, ": expected a message object, got ", kind_name(m.kind));
    ChatMessage message;

    const Value* role = m.find("role");
    if (!role || !role->is_string()) throw_error(where, ".role: missing or not a string");
    message.role = role->text;

    const Value* content = m.find("content");
    if (!content || content->is_null()) {
      message.content_is_string = true;
      message.content_absent = true;
      message.content.push_back(ContentPart{});
    } else if (content->is_string()) {
      message.content_is_string = true;
      message.content.push_back(ContentPart{ContentPart::Type::Text, content->text});
    } else if (content->is_array()) {
      message.content_is_string = false;
      for (size_t j = 0; j < content->items.size(); ++j) {
        message.content.push_back(
            parse_content_part(content->items[j], where + ".content[" + std::to_string(j) + "]"));
      }
    } else {
      throw_error(where, ".content: expected a string, an array of parts or null, got ", kind_name(content->kind));
    }

    if (const Value* calls = m.find("tool_calls"); calls && !calls->is_null()) {
      if (!calls->is_array()) throw_error(where, ".tool_calls: expected an array, got ", kind_name(calls->kind));
      for (size_t j = 0; j < calls->items.size(); ++j) {
        message.tool_calls.push_back(
            parse_tool_call(calls->items[j], where + ".tool_calls[" + std::to_string(j) + "]"));
      }
    }

    if (const Value* id = m.find("tool_call_id"); id && !id->is_null()) {
      if (!id->is_string()) throw_error(where, ".tool_call_id: expected a string, got ", kind_name(id->kind));
      message.tool_call_id = id->text;
    }

    // transformers fills reasoning_content from the first non-null of these names.
    for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
      const Value* reasoning = m.find(key);
      if (!reasoning || reasoning->is_null()) continue;
      if (!reasoning->is_string()) {
        throw_error(where, ".", key, ": expected a string, got ", kind_name(reasoning->kind));
      }
      message.reasoning_content = reasoning->text;
      break;
    }
    messages.push_back(std::move(message));
  }
  return messages;
}

}  // namespace qwen3vl
