// `qwen3vl info -m DIR`: what a checkpoint is — dense or MoE, tied or not, text and vision geometry, dtypes, tensor
// count and bytes, chat template flavour, parameters (active vs total) and the memory needed to run it.
// Reads config.json, generation_config.json, the safetensors headers (mapped, not read) and the chat template;
// it needs no tokenizer. Plain text, or one JSON object with --json.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace qwen3vl {
namespace cli {

struct InfoOptions {
  std::string model_dir;
  bool json = false;
  int64_t context = 4096;         // tokens the memory estimate plans for
  int64_t max_image_tokens = -1;  // merged visual tokens of the planned image; -1: the preprocessor's maximum
};

CLI::App* add_info_command(CLI::App& app, InfoOptions& options);
int info_command(const InfoOptions& options);

}  // namespace cli
}  // namespace qwen3vl
