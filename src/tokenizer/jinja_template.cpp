#include "tokenizer/jinja_template.h"

#include <charconv>
#include <cstdlib>

#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_parser.h"
#include "tokenizer/jinja_render.h"
#include "tokenizer/unicode_text.h"

namespace qwen3vl {

namespace {

using nlohmann::ordered_json;

std::string located(const std::string& source, int line, const std::string& message) {
  return source + ": chat template line " + std::to_string(line) + ": " + message;
}

void check_depth(int depth) {
  if (depth > jinja::kMaxNesting) throw jinja::TemplateError("input JSON is nested too deeply");
}

// JSON to template values. Nesting is checked before descending, so deep input cannot exhaust the stack.
jinja::Value to_value(const ordered_json& json, int depth) {
  using jinja::Value;
  check_depth(depth);
  switch (json.type()) {
    case ordered_json::value_t::null: return Value::none();
    case ordered_json::value_t::boolean: return Value::boolean(json.get<bool>());
    case ordered_json::value_t::number_integer: return Value::integer(json.get<int64_t>());
    case ordered_json::value_t::number_unsigned: {
      const uint64_t value = json.get<uint64_t>();
      if (value > static_cast<uint64_t>(INT64_MAX)) return Value::big_integer(std::to_string(value));
      return Value::integer(static_cast<int64_t>(value));
    }
    case ordered_json::value_t::number_float: return Value::number(json.get<double>());
    case ordered_json::value_t::string: return Value::string(json.get<std::string>());
    case ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(json.size());
      for (const ordered_json& item : json) items.push_back(to_value(item, depth + 1));
      return Value::list(std::move(items));
    }
    case ordered_json::value_t::object: {
      jinja::DictData dict;
      for (const auto& [key, value] : json.items()) dict.set(Value::string(key), to_value(value, depth + 1));
      return Value::dict(std::move(dict));
    }
    default: throw jinja::TemplateError("unsupported JSON value");
  }
}

// Python's int(text) for a JSON integer: int64 when it fits, else the exact digits.
jinja::Value integer_value(const std::string& text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error == std::errc() && end == text.data() + text.size()) return jinja::Value::integer(value);
  const bool negative = text[0] == '-';
  const size_t digits = text.find_first_not_of('0', negative ? 1 : 0);
  return jinja::Value::big_integer((negative ? "-" : "") + text.substr(digits == std::string::npos ? text.size() - 1 : digits));
}

jinja::Value to_value(const chat_json::Value& json, int depth) {
  using jinja::Value;
  using Kind = chat_json::Value::Kind;
  check_depth(depth);
  switch (json.kind) {
    case Kind::Null: return Value::none();
    case Kind::Bool: return Value::boolean(json.boolean);
    case Kind::Integer: return integer_value(json.text);
    case Kind::Float: return Value::number(std::strtod(json.text.c_str(), nullptr));
    case Kind::String: return Value::string(json.text);
    case Kind::Array: {
      std::vector<Value> items;
      items.reserve(json.items.size());
      for (const chat_json::Value& item : json.items) items.push_back(to_value(item, depth + 1));
      return Value::list(std::move(items));
    }
    case Kind::Object: {
      jinja::DictData dict;
      for (const auto& [key, value] : json.members) dict.set(Value::string(key), to_value(value, depth + 1));
      return Value::dict(std::move(dict));
    }
  }
  throw jinja::TemplateError("unsupported JSON value");
}

template <typename Json>
jinja::DictData context_of(const Json& variables, const std::string& source) {
  jinja::DictData context;
  try {
    const jinja::Value value = to_value(variables, 1);
    if (!value.is_dict()) throw Error(source + ": chat template variables must be a JSON object");
    context = value.entries();
  } catch (const jinja::TemplateError& e) {
    throw Error(source + ": chat template input: " + e.what());
  }
  return context;
}

// chat_json objects keep their members in order with unique keys; this sets one like a Python dict does.
void set_member(chat_json::Value& object, const std::string& key, chat_json::Value value) {
  for (auto& member : object.members)
    if (member.first == key) {
      member.second = std::move(value);
      return;
    }
  object.members.emplace_back(key, std::move(value));
}

chat_json::Value json_object() {
  chat_json::Value object;
  object.kind = chat_json::Value::Kind::Object;
  return object;
}

}  // namespace

JinjaTemplate JinjaTemplate::parse(const std::string& text, const std::string& source_name) {
  if (!unicode::is_valid_utf8(text)) throw Error(source_name + ": chat template is not valid UTF-8");
  JinjaTemplate parsed;
  try {
    parsed.body_ = std::make_shared<const jinja::Body>(jinja::parse_template(text));
  } catch (const jinja::SyntaxError& e) {
    throw Error(located(source_name, e.line(), e.what()));
  }
  parsed.text_ = std::make_shared<const std::string>(text);
  parsed.source_name_ = std::make_shared<const std::string>(source_name);
  return parsed;
}

std::string JinjaTemplate::render(const chat_json::Value& variables) const {
  return render(variables, jinja::RenderOptions());
}

std::string JinjaTemplate::render(const chat_json::Value& variables, const jinja::RenderOptions& options) const {
  return run(context_of(variables, *source_name_), options);
}

std::string JinjaTemplate::render(const ordered_json& variables) const { return render(variables, jinja::RenderOptions()); }

std::string JinjaTemplate::render(const ordered_json& variables, const jinja::RenderOptions& options) const {
  return run(context_of(variables, *source_name_), options);
}

std::string JinjaTemplate::run(const jinja::DictData& context, const jinja::RenderOptions& options) const {
  try {
    return jinja::render(*body_, context, options);
  } catch (const jinja::RenderFailure& e) {
    const std::string what = located(*source_name_, e.line(), e.what());
    if (e.raised()) throw ChatTemplateRaised(what, e.what());
    throw Error(what);
  }
}

chat_json::Value chat_template_variables(const ChatTemplateInputs& inputs) {
  using Kind = chat_json::Value::Kind;
  // The inputs apply_chat_template / render_jinja_template refuse before the template runs.
  if (inputs.messages.empty()) throw Error("chat template input: the conversation is empty");
  if (inputs.tools) {
    if (!inputs.tools->is_array()) throw Error("chat template input: tools must be a JSON array");
    for (size_t i = 0; i < inputs.tools->items.size(); ++i)
      if (!inputs.tools->items[i].is_object())
        throw Error("chat template input: tools[" + std::to_string(i) + "] must be a JSON object (a tool's schema)");
  }
  chat_json::Value messages;
  messages.kind = Kind::Array;
  for (size_t i = 0; i < inputs.messages.size(); ++i) {
    const chat_json::Value& message = inputs.messages[i];
    if (!message.is_object()) throw Error("chat template input: messages[" + std::to_string(i) + "] must be an object");
    chat_json::Value kept = json_object();
    for (const auto& [key, value] : message.members)
      if (!value.is_null()) kept.members.emplace_back(key, value);
    // _alias_reasoning_fields: {"thinking": r, **message, "reasoning_content": r} for the first reasoning key set.
    for (const char* field : {"reasoning_content", "thinking", "reasoning"}) {
      const chat_json::Value* reasoning = kept.find(field);
      if (!reasoning) continue;
      chat_json::Value aliased = json_object();
      aliased.members.emplace_back("thinking", *reasoning);
      for (const auto& [key, value] : kept.members) set_member(aliased, key, value);
      set_member(aliased, "reasoning_content", *reasoning);
      kept = std::move(aliased);
      break;
    }
    messages.items.push_back(std::move(kept));
  }
  chat_json::Value variables = json_object();
  for (const auto& [key, value] : inputs.special_tokens) set_member(variables, key, value);
  for (const auto& [key, value] : inputs.extra) set_member(variables, key, value);
  set_member(variables, "messages", std::move(messages));
  set_member(variables, "tools", inputs.tools ? *inputs.tools : chat_json::Value());
  set_member(variables, "documents", chat_json::Value());
  chat_json::Value add_generation_prompt;
  add_generation_prompt.kind = Kind::Bool;
  add_generation_prompt.boolean = inputs.add_generation_prompt;
  set_member(variables, "add_generation_prompt", std::move(add_generation_prompt));
  return variables;
}

}  // namespace qwen3vl
