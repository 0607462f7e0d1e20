// Which chat template a checkpoint ships, found in the files and the order transformers reads them, and the special
// tokens the template sees.
#pragma once

#include <optional>
#include <string>

#include "tokenizer/chat_template_renderer.h"

namespace qwen3vl {

struct ChatTemplateText {
  std::string text;
  std::string source;  // the file (and key) it came from, for messages
};

// The template transformers' processor renders with (ProcessorMixin.from_pretrained, processing_utils.py):
//   1. processor_config.json's "chat_template";
//   2. chat_template.json's "chat_template" (the legacy file: it wins over chat_template.jinja, and a
//      chat_templates/ folder beside it is an error, as in transformers);
//   3. chat_template.jinja, or among named templates (chat_templates/NAME.jinja) the one named "default".
// A processor without one has no template in transformers; here the tokenizer's is used then
// (PreTrainedTokenizerBase: chat_template.jinja / chat_templates/, else tokenizer_config.json's "chat_template", a
// string or a list of {"name", "template"}, "default" chosen). std::nullopt when the checkpoint has none. Throws
// Error naming the file for malformed files and for named templates without a "default".
std::optional<ChatTemplateText> find_chat_template(const std::string& dir);

// transformers' special_tokens_map: bos_token, eos_token, unk_token, sep_token, pad_token, cls_token and mask_token
// from tokenizer_config.json (else special_tokens_map.json), strings or {"content": ...}, null ones left out.
SpecialTokens read_special_tokens(const std::string& dir);

// The renderer for DIR's template, or for the Jinja file `override_file` when it is not empty (--chat-template-file).
// A checkpoint without a template gets the stock Qwen3-VL Instruct one. Throws Error naming the file (and the template
// line) for a template that cannot be read or parsed.
ChatTemplateRenderer load_chat_template(const std::string& dir, const std::string& override_file = "");

}  // namespace qwen3vl
