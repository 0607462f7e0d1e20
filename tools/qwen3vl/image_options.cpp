#include "image_options.h"

#include <cstdio>

#include "core/error.h"
#include "engine/grounding.h"
#include "vision/image_decode.h"

namespace qwen3vl {
namespace cli {

void add_image_options(CLI::App* command, ImageOptions& o) {
  command->add_option("--image", o.paths, "Image file (JPEG, PNG, WebP, BMP, GIF); repeatable, in prompt order");
  command->add_option("--min-pixels", o.min_pixels, "Minimum pixels per image after resize (default: preprocessor_config.json)");
  command->add_option("--max-pixels", o.max_pixels, "Maximum pixels per image after resize (default: preprocessor_config.json)");
  command->add_option("--image-min-tokens", o.min_tokens, "Minimum visual tokens per image (sets --min-pixels)");
  command->add_option("--image-max-tokens", o.max_tokens, "Maximum visual tokens per image (sets --max-pixels)");
  command->add_option("--max-input-pixels", o.max_input_pixels,
                      "Refuse an image whose decoded width*height exceeds this (default 0: no limit)");
  command->add_option("--resize-rule", o.resize_rule,
                      "Image size rule: 'transformers' (default) or 'qwen-vl-utils' (its smart_resize variant)")
      ->check(CLI::IsMember({"transformers", "qwen-vl-utils"}));
  command->add_flag("--grounding", o.grounding,
                    "After the reply, print its bbox_2d/point_2d objects mapped to the first image's pixels (JSON)");
}

std::vector<ProcessedImage> load_images(const ImageOptions& o, const LoadedModel& model) {
  const ImageProcessorConfig& config = model.image_processor;
  const int64_t pixels_per_token = (config.patch_size * config.merge_size) * (config.patch_size * config.merge_size);
  PixelBudget budget;
  budget.min_pixels = o.min_tokens ? std::optional<int64_t>(*o.min_tokens * pixels_per_token) : o.min_pixels;
  budget.max_pixels = o.max_tokens ? std::optional<int64_t>(*o.max_tokens * pixels_per_token) : o.max_pixels;
  const ResizeRule rule = o.resize_rule == "qwen-vl-utils" ? ResizeRule::QwenVlUtils : ResizeRule::Transformers;
  std::vector<ProcessedImage> images;
  for (size_t i = 0; i < o.paths.size(); ++i) {
    try {
      images.push_back(preprocess_image(decode_image_file(o.paths[i], o.max_input_pixels), config, budget, rule));
    } catch (const Error& error) {  // name the file in every message, also for size errors found after decoding
      const std::string message = error.what();
      if (message.rfind(o.paths[i], 0) == 0) throw;
      throw_error(o.paths[i], ": ", message);
    }
    const ProcessedImage& image = images.back();
    std::fprintf(stderr, "image %zu: %s %lldx%lld -> %lldx%lld, grid %lldx%lldx%lld, %lld visual tokens\n", i + 1,
                 o.paths[i].c_str(), static_cast<long long>(image.original_width),
                 static_cast<long long>(image.original_height), static_cast<long long>(image.resized_width),
                 static_cast<long long>(image.resized_height), static_cast<long long>(image.grid.t),
                 static_cast<long long>(image.grid.h), static_cast<long long>(image.grid.w),
                 static_cast<long long>(image.grid.merged_tokens(config.merge_size)));
  }
  return images;
}

void print_grounding(const std::string& reply, const std::vector<ProcessedImage>& images) {
  if (images.empty()) return;
  const GroundingResult result = parse_grounding(reply, images.front().original_width, images.front().original_height);
  for (const std::string& warning : result.warnings) std::fprintf(stderr, "grounding: %s\n", warning.c_str());
  std::printf("%s\n", grounding_to_json(result).c_str());
}

}  // namespace cli
}  // namespace qwen3vl
