#include "weight_format_options.h"

#include "ops/quant.h"

namespace qwen3vl {
namespace cli {

void add_weight_format_options(CLI::App* command, WeightFormatOptions& o) {
  add_weight_format_options(command, o.weight_format, o.vision_format);
}

void add_weight_format_options(CLI::App* command, std::string& weight_format, std::string& vision_format) {
  command
      ->add_option("--weight-format", weight_format,
                   "Language model weights: bf16, f16, q8 (8-bit blocks) or q4 (4-bit blocks), converted at load "
                   "(default: as shipped)")
      ->check(CLI::IsMember({"bf16", "f16", "q8", "q4"}));
  command
      ->add_option("--vision-format", vision_format,
                   "Vision tower weights: bf16 or q8, converted at load (default: as shipped)")
      ->check(CLI::IsMember({"bf16", "q8"}));
}

void apply_weight_formats(const WeightFormatOptions& o, LoadOptions& load) {
  if (!o.weight_format.empty()) load.weight_format = parse_weight_format(o.weight_format, "--weight-format");
  if (!o.vision_format.empty()) load.vision_format = parse_weight_format(o.vision_format, "--vision-format");
}

}  // namespace cli
}  // namespace qwen3vl
