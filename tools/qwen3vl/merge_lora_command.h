// `qwen3vl merge-lora`: PEFT adapters merged into a checkpoint, written as a new Hugging Face checkpoint directory.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace qwen3vl {
namespace cli {

struct MergeLoraCommandOptions {
  std::string model_dir;
  std::vector<std::string> lora;  // DIR[:SCALE]
  std::string out_dir;
  std::string dtype;              // "" (each tensor's own), "bf16", "f32"
  int threads = 0;
};

CLI::App* add_merge_lora_command(CLI::App& app, MergeLoraCommandOptions& options);
int merge_lora_command(const MergeLoraCommandOptions& options);

}  // namespace cli
}  // namespace qwen3vl
