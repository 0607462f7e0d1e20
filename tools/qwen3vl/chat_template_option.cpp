#include "chat_template_option.h"

namespace qwen3vl {
namespace cli {

void add_chat_template_option(CLI::App* command, std::string& file) {
  command->add_option("--chat-template-file", file,
                      "Jinja chat template to render prompts with instead of the checkpoint's (chat_template.jinja, "
                      "chat_template.json or tokenizer_config.json)");
}

}  // namespace cli
}  // namespace qwen3vl
