#include "merge_lora_command.h"

#include <cstdio>

#include "core/timer.h"
#include "engine/merge_lora.h"
#include "lora_options.h"

namespace qwen3vl {
namespace cli {

CLI::App* add_merge_lora_command(CLI::App& app, MergeLoraCommandOptions& o) {
  CLI::App* cmd = app.add_subcommand("merge-lora", "Merge PEFT LoRA adapters into a checkpoint (as PEFT's "
                                                   "merge_and_unload) and write it as a new checkpoint");
  cmd->add_option("-m,--model", o.model_dir, "Base checkpoint directory (Hugging Face layout)")->required();
  cmd->add_option("--lora", o.lora, "PEFT adapter folder, optionally with a scale: DIR[:SCALE] (repeatable; merged "
                                    "in the order given)")
      ->required();
  cmd->add_option("-o,--out", o.out_dir, "Output directory (must not exist)")->required();
  cmd->add_option("--dtype", o.dtype, "Floating tensors of the output: bf16 or f32 (default: as in the base)")
      ->check(CLI::IsMember({"bf16", "f32"}));
  cmd->add_option("-t,--threads", o.threads, "Threads (default: one per processor core)")
      ->check(CLI::NonNegativeNumber);
  return cmd;
}

int merge_lora_command(const MergeLoraCommandOptions& o) {
  Stopwatch clock;
  std::vector<MergeAdapter> adapters;
  for (const std::string& spec : o.lora) {
    const LoraSpec parsed = split_lora_spec(spec);
    adapters.push_back({parsed.dir, parsed.scale});
  }
  MergeLoraOptions options;
  if (o.dtype == "bf16") options.dtype = DType::BF16;
  if (o.dtype == "f32") options.dtype = DType::F32;
  options.threads = o.threads;
  options.progress = [&clock](const std::string& line) {
    std::fprintf(stderr, "merge-lora [%6.1f s] %s\n", clock.seconds(), line.c_str());
  };
  merge_lora(o.model_dir, adapters, o.out_dir, options);
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
