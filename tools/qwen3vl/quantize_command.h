// `qwen3vl quantize -m IN_DIR -o OUT_DIR --format {q8,q4} [--vision-format {bf16,q8}]`: writes a converted
// checkpoint once (engine/quantize.h), so that later loads map the quantized weights instead of converting them.
// Progress on stderr.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace qwen3vl {
namespace cli {

struct QuantizeCommandOptions {
  std::string model_dir, out_dir, format, vision_format;
  int threads = 0;
};

CLI::App* add_quantize_command(CLI::App& app, QuantizeCommandOptions& options);
int quantize_command(const QuantizeCommandOptions& options);

}  // namespace cli
}  // namespace qwen3vl
