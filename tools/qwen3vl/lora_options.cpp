#include "lora_options.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace qwen3vl {
namespace cli {

void add_lora_options(CLI::App* command, std::vector<std::string>& specs) {
  command->add_option("--lora", specs,
                      "PEFT LoRA adapter folder, optionally with a scale: DIR[:SCALE] (repeatable; the adapters add "
                      "up in the order given)");
}

LoraSpec split_lora_spec(const std::string& spec) {
  std::string dir = spec;
  double scale = 1.0;
  // A trailing ":number" is the scale; a folder name may hold ':' itself.
  const size_t colon = spec.rfind(':');
  if (colon != std::string::npos) {
    const std::string tail = spec.substr(colon + 1);
    char* end = nullptr;
    errno = 0;
    const double value = std::strtod(tail.c_str(), &end);
    if (!tail.empty() && end == tail.c_str() + tail.size()) {
      if (errno != 0 || !std::isfinite(value)) throw_error("--lora ", spec, ": the scale must be a finite number");
      dir = spec.substr(0, colon);
      scale = value;
    }
  }
  if (dir.empty()) throw_error("--lora ", spec, ": no adapter folder");
  return {dir, scale};
}

std::shared_ptr<const AdaptedWeights> load_lora_specs(const std::vector<std::string>& specs, const LoadedModel& model) {
  std::vector<ActiveAdapter> adapters;
  for (const std::string& spec : specs) {
    const LoraSpec parsed = split_lora_spec(spec);
    adapters.push_back({load_adapter(model, parsed.dir), parsed.scale});
  }
  return bind_adapters(model, std::move(adapters));
}

}  // namespace cli
}  // namespace qwen3vl
