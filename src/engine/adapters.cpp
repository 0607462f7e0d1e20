#include "engine/adapters.h"

namespace qwen3vl {

std::shared_ptr<const LoraAdapter> load_adapter(const LoadedModel& model, const std::string& dir) {
  return LoraAdapter::load(dir, model.text_weights, model.vision ? &model.vision_weights : nullptr);
}

std::shared_ptr<const AdaptedWeights> bind_adapters(const LoadedModel& model, std::vector<ActiveAdapter> adapters) {
  if (adapters.empty()) return nullptr;
  return std::make_shared<const AdaptedWeights>(model.text_weights, model.vision ? &model.vision_weights : nullptr,
                                                std::move(adapters));
}

}  // namespace qwen3vl
