// Client messages through the chat template: parse_chat_messages (OpenAI messages JSON) and apply_chat_template.
// The template options come from the input's byte sum, so seeds stay plain messages arrays.
#include <numeric>

#include "core/error.h"
#include "fuzz_common.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const unsigned options_bits = std::accumulate(data, data + size, 0u);
  std::vector<qwen3vl::ChatMessage> messages;
  try {
    messages = qwen3vl::parse_chat_messages(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const qwen3vl::Error&) {
    return 0;
  }
  qwen3vl::ChatTemplateOptions options;
  options.kind = options_bits & 1 ? qwen3vl::ChatTemplateKind::Thinking : qwen3vl::ChatTemplateKind::Instruct;
  options.add_generation_prompt = options_bits & 2;
  options.add_vision_id = options_bits & 4;
  if (options_bits & 8)
    options.tools_json.push_back(
        R"({"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}})");
  try {
    qwen3vl::apply_chat_template(messages, options);
  } catch (const qwen3vl::Error&) {
  }
  return 0;
}
