// `qwen3vl finetune`: LoRA, full and mixed fine-tuning (train/finetune.h). This file only maps flags to options;
// the names follow qwen-vl-finetune's and transformers' TrainingArguments where they exist.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "train/finetune.h"

namespace qwen3vl {
namespace cli {

struct FinetuneCommandOptions {
  FinetuneOptions run;
  bool skip_bad_samples = false;
  bool no_shuffle = false;
  bool no_tune_deepstack = false;
  bool tune_deepstack = false;
  std::string lr_scheduler = "linear";
  std::string weight_format;  // "" (as stored), bf16, q8, q4
  std::string label_rule = "any-assistant";
  double warmup_ratio = 0.0;
  int64_t min_pixels = 0, max_pixels = 0, video_min_pixels = 0, video_max_pixels = 0;
  int64_t video_min_frames = 0, video_max_frames = 0;
  double video_fps = 0.0;
  double mm_projector_lr = 0.0, vision_tower_lr = -1.0;
};

CLI::App* add_finetune_command(CLI::App& app, FinetuneCommandOptions& options);
int finetune_command(FinetuneCommandOptions& options);

}  // namespace cli
}  // namespace qwen3vl
