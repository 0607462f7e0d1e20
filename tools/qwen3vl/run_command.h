// `qwen3vl run`: one prompt in, generated text streamed to stdout, timings to stderr.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "image_options.h"
#include "lora_options.h"
#include "video_options.h"
#include "weight_format_options.h"

namespace qwen3vl {
namespace cli {

struct RunOptions {
  std::string model_dir;
  std::string prompt;
  std::string system;
  bool raw = false;
  bool verbose_prompt = false;
  int64_t n_predict = -1;  // -1: generation_config's max_new_tokens, else 256
  std::optional<float> temperature;
  std::optional<int64_t> top_k;
  std::optional<float> top_p;
  std::optional<float> min_p;
  std::optional<float> repeat_penalty;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  ImageOptions images;
  VideoCliOptions videos;
  int threads = 0;  // 0: one per processor core
  WeightFormatOptions formats;
  std::string chat_template_file;  // --chat-template-file: rendered instead of the checkpoint's template
  std::vector<std::string> lora;  // --lora DIR[:SCALE]
  std::string reasoning_format = "separate";  // Thinking checkpoints: "separate" (reasoning to stderr) or "none"
};

CLI::App* add_run_command(CLI::App& app, RunOptions& options);
int run_command(const RunOptions& options);

}  // namespace cli
}  // namespace qwen3vl
