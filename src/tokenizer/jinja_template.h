// A Hugging Face chat template, parsed once and rendered many times by the project's own interpreter of the Jinja
// subset chat templates use (jinja_lexer / jinja_parser / jinja_render / jinja_filters / jinja_methods).
//
// Rendering reproduces transformers' apply_chat_template (utils/chat_template_utils.py, render_jinja_template): the
// template runs as in jinja2's ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the loopcontrols
// extension and transformers' `{% generation %}` tag, its `tojson` (json.dumps with ensure_ascii=False),
// raise_exception, strftime_now, namespace and dict. Values follow Python: str() of lists and dicts prints their
// repr(), True / False / None print capitalised, floats print as Python's repr.
//
// Templates come from downloaded checkpoints and messages from HTTP clients, so both are bounded: nesting depth at
// parse time, and work, output size and recursion at render time (jinja_render.h's RenderOptions).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/error.h"
#include "tokenizer/chat_template_json.h"

namespace qwen3vl {

namespace jinja {
struct Stmt;
struct RenderOptions;
struct DictData;
}  // namespace jinja

// The template rejected its input with raise_exception(message), e.g. roles that do not alternate.
class ChatTemplateRaised : public Error {
 public:
  ChatTemplateRaised(const std::string& what, std::string template_message)
      : Error(what), template_message_(std::move(template_message)) {}
  const std::string& template_message() const { return template_message_; }

 private:
  std::string template_message_;
};

class JinjaTemplate {
 public:
  // Parses `text`. Throws Error("<source_name>: chat template line N: <what>") for malformed templates and for
  // constructs the interpreter does not support (include, extends, call blocks, unknown filters...).
  static JinjaTemplate parse(const std::string& text, const std::string& source_name);

  // Renders with `variables` (a JSON object) as the template's context. Throws Error("<source_name>: chat template
  // line N: <what>") when rendering fails, ChatTemplateRaised for raise_exception. chat_json keeps integers beyond
  // 64 bits exactly, as Python does; nlohmann::json turns them into doubles.
  std::string render(const chat_json::Value& variables) const;
  std::string render(const chat_json::Value& variables, const jinja::RenderOptions& options) const;
  std::string render(const nlohmann::ordered_json& variables) const;
  std::string render(const nlohmann::ordered_json& variables, const jinja::RenderOptions& options) const;

  const std::string& text() const { return *text_; }
  const std::string& source_name() const { return *source_name_; }

 private:
  JinjaTemplate() = default;
  std::string run(const jinja::DictData& context, const jinja::RenderOptions& options) const;
  std::shared_ptr<const std::vector<std::unique_ptr<jinja::Stmt>>> body_;
  std::shared_ptr<const std::string> text_;
  std::shared_ptr<const std::string> source_name_;
};

// What transformers passes to a chat template (tokenization_utils_base.py apply_chat_template and
// render_jinja_template): messages with their None-valued keys dropped and reasoning copied between
// "reasoning_content" and "thinking" (_alias_reasoning_fields), tools (None when absent), documents (None),
// add_generation_prompt, the tokenizer's special tokens (bos_token, eos_token, ...) and every extra keyword
// argument (add_vision_id, enable_thinking, ...), which override special tokens of the same name.
struct ChatTemplateInputs {
  std::vector<chat_json::Value> messages;  // JSON objects
  std::optional<chat_json::Value> tools;   // an array, or absent
  bool add_generation_prompt = false;
  std::vector<std::pair<std::string, chat_json::Value>> special_tokens;
  std::vector<std::pair<std::string, chat_json::Value>> extra;
};

// The template context for `inputs`. Throws Error for what transformers refuses before rendering: an empty
// conversation, a message that is not a JSON object, a tool that is not one.
chat_json::Value chat_template_variables(const ChatTemplateInputs& inputs);

}  // namespace qwen3vl
