// `qwen3vl quantize`: converts a checkpoint once and writes it as a checkpoint directory that later loads without
// conversion (the quantized tensors are mapped in place). The output holds one model.safetensors (quantized
// weights as U8 blobs described in __metadata__, see io/safetensors.h; everything else as shipped, including a
// separate lm_head.weight when the head was tied) and a copy of every other file of the input directory (config,
// generation config, tokenizer, preprocessor, chat template).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "core/dtype.h"

namespace qwen3vl {

struct QuantizeOptions {
  DType weight_format = DType::Q8;     // Q8 or Q4
  std::optional<DType> vision_format;  // BF16 or Q8; nullopt keeps the tower as shipped
  int threads = 0;                     // 0: one per processor core
  std::function<void(const std::string& line)> progress;  // one line per step (stderr in the CLI), or null
};

// Writes OUT_DIR from IN_DIR. The output is built in a temporary sibling directory and renamed to OUT_DIR only when
// complete, so an interrupted run never leaves a directory that looks like a checkpoint. Throws Error naming the
// file at fault (OUT_DIR must not exist yet).
void quantize_checkpoint(const std::string& in_dir, const std::string& out_dir, const QuantizeOptions& options);

}  // namespace qwen3vl
