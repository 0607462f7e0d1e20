#include "quantize_command.h"

#include <cstdio>

#include "core/timer.h"
#include "engine/quantize.h"
#include "ops/quant.h"

namespace qwen3vl {
namespace cli {

CLI::App* add_quantize_command(CLI::App& app, QuantizeCommandOptions& o) {
  CLI::App* cmd = app.add_subcommand("quantize", "Write a checkpoint with 8-bit or 4-bit block-quantized weights");
  cmd->add_option("-m,--model", o.model_dir, "Input checkpoint directory (Hugging Face layout)")->required();
  cmd->add_option("-o,--out", o.out_dir, "Output directory (must not exist)")->required();
  cmd->add_option("--format", o.format, "Language model weights: q8 or q4")
      ->required()
      ->check(CLI::IsMember({"q8", "q4"}));
  cmd->add_option("--vision-format", o.vision_format, "Vision tower weights: bf16 or q8 (default: as shipped)")
      ->check(CLI::IsMember({"bf16", "q8"}));
  cmd->add_option("-t,--threads", o.threads, "Threads (default: one per processor core)")
      ->check(CLI::NonNegativeNumber);
  return cmd;
}

int quantize_command(const QuantizeCommandOptions& o) {
  Stopwatch clock;
  QuantizeOptions options;
  options.weight_format = parse_weight_format(o.format, "--format");
  if (!o.vision_format.empty()) options.vision_format = parse_weight_format(o.vision_format, "--vision-format");
  options.threads = o.threads;
  options.progress = [&clock](const std::string& line) {
    std::fprintf(stderr, "quantize [%6.1f s] %s\n", clock.seconds(), line.c_str());
  };
  quantize_checkpoint(o.model_dir, o.out_dir, options);
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
