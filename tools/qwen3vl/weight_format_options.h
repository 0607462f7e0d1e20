// --weight-format / --vision-format of run, bench, serve, eval and kld: convert the weights at load
// (engine LoadOptions; what is converted: model/weight_convert.h).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "engine/loaded_model.h"

namespace qwen3vl {
namespace cli {

struct WeightFormatOptions {
  std::string weight_format;  // "" (as shipped), "bf16", "f16", "q8", "q4"
  std::string vision_format;  // "" (as shipped), "bf16", "q8"
};

void add_weight_format_options(CLI::App* command, WeightFormatOptions& options);
void add_weight_format_options(CLI::App* command, std::string& weight_format, std::string& vision_format);
void apply_weight_formats(const WeightFormatOptions& options, LoadOptions& load);

}  // namespace cli
}  // namespace qwen3vl
