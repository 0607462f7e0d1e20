// A checkpoint directory loaded for inference: config, generation defaults, mapped weights, decoder, tokenizer
// and chat template. Immutable after load and shared by every request.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/thread_pool.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/text_decoder.h"
#include "model/text_weights.h"
#include "model/vision_encoder.h"
#include "model/vision_weights.h"
#include "model/weight_convert.h"
#include "tokenizer/chat_template_renderer.h"
#include "tokenizer/tokenizer.h"
#include "vision/image_processor.h"

namespace qwen3vl {

struct LoadedModel {
  std::string dir;
  ModelConfig config;
  GenerationConfig generation;
  TensorStore tensors;
  TextWeights text_weights;
  ConvertedWeights converted;               // weights converted at load (LoadOptions::weight_format / vision_format)
  std::unique_ptr<ThreadPool> pool;         // the threads every forward pass (decoder and vision tower) runs on
  std::unique_ptr<TextDecoder> decoder;
  VisionWeights vision_weights;
  std::unique_ptr<VisionEncoder> vision;
  ImageProcessorConfig image_processor;     // preprocessor_config.json (defaults when absent)
  std::unique_ptr<Tokenizer> tokenizer;     // null only when loaded with require_tokenizer = false
  ChatTemplateRenderer chat_template;       // the checkpoint's (engine/chat_template_files.h), or the override
};

struct LoadOptions {
  bool require_tokenizer = true;  // false: a checkpoint without tokenizer files loads for id-level work (tests)
  int threads = 0;                 // threads of the forward passes; 0: one per processor core
  // Formats of the weights (model/weight_convert.h): nullopt runs them as shipped (or as `qwen3vl quantize` stored
  // them). Text: Q8, Q4, BF16 or F16; vision tower: Q8 or BF16. Converted on the pool at load.
  std::optional<DType> weight_format;
  std::optional<DType> vision_format;
  // A Jinja file rendered instead of the checkpoint's chat template (--chat-template-file); empty: the checkpoint's.
  std::string chat_template_file;
};

// Loads DIR (config.json, generation_config.json, preprocessor_config.json, safetensors, tokenizer.json, chat
// template). Throws Error naming the file and field or tensor at fault (and the line of a chat template it cannot
// parse).
std::unique_ptr<LoadedModel> load_model(const std::string& dir, const LoadOptions& options = {});

}  // namespace qwen3vl
