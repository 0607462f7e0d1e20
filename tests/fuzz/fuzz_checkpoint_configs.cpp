// Checkpoint configs: config.json, generation_config.json, preprocessor_config.json and
// video_preprocessor_config.json (the input's parts between 0 bytes, in that order; an empty part leaves the file
// out) read by their loaders, then by load_model, which cross-checks them against each other before it looks for
// weights (there are none, so a load that gets that far ends in the "no model.safetensors" error).
#include "core/error.h"
#include "engine/loaded_model.h"
#include "fuzz_common.h"
#include "io/model_config.h"
#include "vision/image_processor.h"
#include "vision/video_processor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts =
      qwen3vl::fuzz::split_at_zeros(std::string_view(reinterpret_cast<const char*>(data), size), 4);
  const char* const names[] = {"config.json", "generation_config.json", "preprocessor_config.json",
                               "video_preprocessor_config.json"};
  qwen3vl::fuzz::TempDir dir;
  for (size_t i = 0; i < parts.size(); ++i)
    if (!parts[i].empty()) dir.write(names[i], parts[i]);
  const std::string& path = dir.path();
  try {
    qwen3vl::load_model_config(path + "/config.json");
  } catch (const qwen3vl::Error&) {
  }
  try {
    qwen3vl::load_generation_config(path + "/generation_config.json");
  } catch (const qwen3vl::Error&) {
  }
  try {
    qwen3vl::load_image_processor_config(path + "/preprocessor_config.json");
  } catch (const qwen3vl::Error&) {
  }
  try {
    qwen3vl::load_video_processor_config(path);
  } catch (const qwen3vl::Error&) {
  }
  try {
    qwen3vl::LoadOptions options;
    options.require_tokenizer = false;
    options.threads = 1;
    qwen3vl::load_model(path, options);
    qwen3vl::fuzz::check(false, "a checkpoint without weights loaded");
  } catch (const qwen3vl::Error&) {
  }
  return 0;
}
