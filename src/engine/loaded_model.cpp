#include "engine/loaded_model.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "engine/chat_template_files.h"
#include "ops/quant.h"
#include "vision/video_processor.h"

namespace qwen3vl {
namespace {

bool read_text_file(const std::string& path, std::string* text) {
  std::ifstream in(path);
  if (!in) return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  *text = buffer.str();
  return true;
}

// The file load_video_processor_config reads its values from (same order), for messages.
std::string video_config_source(const std::string& dir) {
  std::string text;
  if (read_text_file(dir + "/processor_config.json", &text)) {
    const nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_object() && json.contains("video_processor")) return dir + "/processor_config.json video_processor";
  }
  for (const char* name : {"/video_preprocessor_config.json", "/preprocessor_config.json"})
    if (std::ifstream(dir + name).good()) return dir + name;
  return dir + "/video_preprocessor_config.json (absent: the defaults)";
}

// The processors cut pixels into patches of the tower's size: a processor config copied from another model (Qwen2-VL:
// patch_size 14) would make rows of another width than the patch embedding reads.
void check_patch_sizes(const std::string& source, int64_t patch_size, int64_t temporal_patch_size,
                       int64_t merge_size, const ModelConfig& config) {
  const VisionConfig& v = config.vision_config;
  auto check = [&](const char* field, int64_t value, const char* vision_field, int64_t expected) {
    if (value != expected)
      throw_error(source, ": ", field, " ", value, " does not match vision_config.", vision_field, " ", expected,
                  " in ", config.path);
  };
  check("patch_size", patch_size, "patch_size", v.patch_size);
  check("temporal_patch_size", temporal_patch_size, "temporal_patch_size", v.temporal_patch_size);
  check("merge_size", merge_size, "spatial_merge_size", v.spatial_merge_size);
}

}  // namespace

std::unique_ptr<LoadedModel> load_model(const std::string& dir, const LoadOptions& options) {
  auto model = std::make_unique<LoadedModel>();
  model->dir = dir;
  model->config = load_model_config(dir + "/config.json");
  model->generation = load_generation_config(dir + "/generation_config.json");
  if (model->generation.eos_token_id.empty()) model->generation.eos_token_id = model->config.eos_token_id;

  const std::string image_config_path = dir + "/preprocessor_config.json";
  model->image_processor = load_image_processor_config(image_config_path);
  const ImageProcessorConfig& image = model->image_processor;
  check_patch_sizes(std::ifstream(image_config_path).good() ? image_config_path
                                                            : image_config_path + " (absent: the defaults)",
                    image.patch_size, image.temporal_patch_size, image.merge_size, model->config);
  const VideoProcessorConfig video = load_video_processor_config(dir);
  check_patch_sizes(video_config_source(dir), video.patch_size, video.temporal_patch_size, video.merge_size,
                    model->config);

  const std::string tokenizer_path = dir + "/tokenizer.json";
  const bool has_tokenizer = std::ifstream(tokenizer_path).good();
  if (!has_tokenizer && options.require_tokenizer)
    throw_error(tokenizer_path, ": missing (the tokenizer files are part of a checkpoint)");
  if (has_tokenizer) model->tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_file(tokenizer_path));
  model->chat_template = load_chat_template(dir, options.chat_template_file);

  model->tensors = TensorStore::open_dir(dir);
  model->text_weights = bind_text_weights(model->tensors, model->config);
  model->pool = std::make_unique<ThreadPool>(options.threads);
  if (options.weight_format)
    convert_text_weights(model->text_weights, model->tensors, *options.weight_format, model->pool.get(),
                         model->converted);
  const ops::Context ctx{model->pool.get(), nullptr};  // nullptr: the best kernels the processor runs
  model->decoder = std::make_unique<TextDecoder>(model->config, model->text_weights, ctx);
  model->vision_weights = bind_vision_weights(model->tensors, model->config);
  if (options.vision_format) {
    if (*options.vision_format != DType::BF16 && *options.vision_format != DType::Q8)
      throw_error("vision format ", weight_format_name(*options.vision_format), " is not supported (bf16 or q8)");
    convert_vision_weights(model->vision_weights, model->tensors, *options.vision_format, model->pool.get(),
                           model->converted);
  }
  model->vision = std::make_unique<VisionEncoder>(model->config, model->vision_weights, ctx);
  return model;
}

}  // namespace qwen3vl
