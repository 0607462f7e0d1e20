// --lora DIR[:SCALE] of run (repeatable): PEFT adapters applied at run time, in the order given; SCALE (default 1)
// multiplies the adapter's own lora_alpha / r, as PEFT's scale_layer does.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "engine/adapters.h"

namespace qwen3vl {
namespace cli {

void add_lora_options(CLI::App* command, std::vector<std::string>& specs);

struct LoraSpec {
  std::string dir;
  double scale = 1.0;
};
// "DIR" or "DIR:SCALE" (SCALE a finite number); throws Error naming the option for anything else.
LoraSpec split_lora_spec(const std::string& spec);

// The adapters of the specs bound to the model; null when there are none.
std::shared_ptr<const AdaptedWeights> load_lora_specs(const std::vector<std::string>& specs, const LoadedModel& model);

}  // namespace cli
}  // namespace qwen3vl
