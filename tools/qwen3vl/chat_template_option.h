// --chat-template-file of run, serve, eval and finetune: a Jinja chat template rendered instead of the one the
// checkpoint ships (engine LoadOptions::chat_template_file; errors name the file and the template line).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace qwen3vl {
namespace cli {

void add_chat_template_option(CLI::App* command, std::string& file);

}  // namespace cli
}  // namespace qwen3vl
