// LoRA adapter sets of a loaded model: PEFT adapter folders read against the checkpoint and bound beside its
// weights (model/lora_adapter.h), with the user's scale per adapter.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/loaded_model.h"
#include "model/lora_adapter.h"

namespace qwen3vl {

// Reads a PEFT adapter folder against `model`; throws Error naming the adapter file and tensor or field at fault.
std::shared_ptr<const LoraAdapter> load_adapter(const LoadedModel& model, const std::string& dir);

// The model's weights with `adapters` bound in order; null when the list is empty.
std::shared_ptr<const AdaptedWeights> bind_adapters(const LoadedModel& model, std::vector<ActiveAdapter> adapters);

}  // namespace qwen3vl
