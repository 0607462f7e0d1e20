// Image flags of `qwen3vl run`: which files, the pixel budget (llama.cpp users' token spelling too), the resize
// rule, and grounding output.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/loaded_model.h"
#include "vision/image_processor.h"

namespace qwen3vl {
namespace cli {

struct ImageOptions {
  std::vector<std::string> paths;
  std::optional<int64_t> min_pixels, max_pixels;
  std::optional<int64_t> min_tokens, max_tokens;  // visual tokens; one token covers (patch * merge)^2 pixels
  int64_t max_input_pixels = 0;                   // refuse larger decoded images; 0: no limit
  std::string resize_rule = "transformers";
  bool grounding = false;
};

void add_image_options(CLI::App* command, ImageOptions& options);

// Decodes and preprocesses every --image in order, printing one line per image to stderr
// ("image 1: a.jpg 640x480 -> 640x480, grid 1x30x40, 300 visual tokens").
std::vector<ProcessedImage> load_images(const ImageOptions& options, const LoadedModel& model);

// --grounding: bbox_2d / point_2d objects of the reply mapped to the first image's pixels, as one JSON line on
// stdout (warnings to stderr). Nothing when there is no image.
void print_grounding(const std::string& reply, const std::vector<ProcessedImage>& images);

}  // namespace cli
}  // namespace qwen3vl
