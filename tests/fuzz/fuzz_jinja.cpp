// Chat templates through the Jinja interpreter: any text is parsed with JinjaTemplate::parse and, when it parses,
// rendered against a fixed conversation (roles, content lists with images, tool calls, tools, special tokens). Text
// after a NUL byte, when it is JSON (chat_json), replaces the messages. Small render limits keep each input fast; exceeding them
// is an Error like any other. The target checks that only qwen3vl::Error comes out and that the output stays within
// its limit.
#include "core/error.h"
#include "fuzz_common.h"
#include "tokenizer/jinja_render.h"
#include "tokenizer/jinja_template.h"

namespace {

const qwen3vl::chat_json::Value& fixed_variables() {
  static const qwen3vl::chat_json::Value variables = [] {
    auto json = [](const char* text) { return qwen3vl::chat_json::parse(text, "fuzz_jinja"); };
    qwen3vl::ChatTemplateInputs inputs;
    inputs.messages = json(R"([
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": [{"type": "image", "image": "a.png"}, {"type": "text", "text": "What's this?"}]},
      {"role": "assistant", "content": "<think>\nhm\n</think>\n\nA cat.", "tool_calls": [
        {"type": "function", "function": {"name": "zoom", "arguments": {"x": 1, "y": [0.5, null, true]}}}]},
      {"role": "tool", "content": "{\"ok\": true}"},
      {"role": "user", "content": "Thanks \u00e9\u2713 123456789012345678901234567890"}])").items;
    inputs.tools = json(R"([{"type": "function", "function": {"name": "zoom", "description": "Zoom in.",
        "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}}])");
    inputs.add_generation_prompt = true;
    inputs.special_tokens = {{"bos_token", json(R"("<s>")")}, {"eos_token", json(R"("<|im_end|>")")}};
    inputs.extra = {{"add_vision_id", json("true")}, {"enable_thinking", json("false")}, {"big", json("1e400")}};
    return qwen3vl::chat_template_variables(inputs);
  }();
  return variables;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  qwen3vl::chat_json::Value variables = fixed_variables();
  if (nul != std::string::npos) {
    try {
      qwen3vl::chat_json::Value messages = qwen3vl::chat_json::parse(input.substr(nul + 1), "messages");
      for (auto& member : variables.members)
        if (member.first == "messages") member.second = std::move(messages);
    } catch (const qwen3vl::Error&) {
    }
  }
  qwen3vl::jinja::RenderOptions limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_work = 200000;
  try {
    const auto parsed = qwen3vl::JinjaTemplate::parse(input.substr(0, nul), "fuzz.jinja");
    const std::string text = parsed.render(variables, limits);
    qwen3vl::fuzz::check(text.size() <= limits.max_output_bytes, "output within its limit");
  } catch (const qwen3vl::Error&) {
  }
  return 0;
}
