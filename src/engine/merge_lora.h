// `qwen3vl merge-lora`: a checkpoint with PEFT adapters merged into its weights, as PEFT's merge_and_unload()
// computes it (peft/tuners/lora/layer.py Linear.merge, get_delta_weight; DoRA: variants.py
// DoraLinearVariant.merge_unsafe), written as a Hugging Face checkpoint directory that transformers loads:
// the same tensor names and shards as the input (model.safetensors.index.json kept), every other file copied,
// a tied lm_head kept tied.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace qwen3vl {

struct MergeAdapter {
  std::string dir;
  double scale = 1.0;  // multiplies the adapter's lora_alpha / r
};

struct MergeLoraOptions {
  std::optional<DType> dtype;  // F32 or BF16 for every floating tensor; nullopt: each tensor's own dtype
  int threads = 0;
  std::function<void(const std::string& line)> progress;  // one line per step, or null
};

// Writes OUT_DIR (which must not exist) from BASE_DIR and the adapters, merged in order as PEFT merges several
// adapters (each delta added to the weight and rounded to its dtype in turn). Throws Error naming the file at fault.
void merge_lora(const std::string& base_dir, const std::vector<MergeAdapter>& adapters, const std::string& out_dir,
                const MergeLoraOptions& options);

}  // namespace qwen3vl
