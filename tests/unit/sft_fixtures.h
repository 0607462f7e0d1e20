// Fine-tuning data fixtures shared by the SFT tests: the committed dataset tests/fixtures/train/data/sft_mixed.jsonl
// (media relative to tests/fixtures) and a SampleBuilder for tiny-realtok-bf16 (real Qwen tokenizer and Instruct
// template) with the budgets scripts/reference/make_label_goldens.py uses.
#pragma once

#include <string>

#include "engine/chat_template_files.h"
#include "engine/loaded_model.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "train/sample_builder.h"

namespace qwen3vl {
namespace testing {

inline std::string sft_dataset_path() { return fixtures_dir() + "/train/data/sft_mixed.jsonl"; }

inline SftReadOptions sft_read_options() {
  SftReadOptions options;
  options.media_root = fixtures_dir();
  return options;
}

inline MediaBudget sft_golden_budget() {
  MediaBudget budget;
  budget.min_pixels = 4096;
  budget.max_pixels = 16384;
  budget.video_min_pixels = 4096;
  budget.video_max_pixels = 24576;
  budget.video_fps = 2.0;
  budget.video_min_frames = 4;
  budget.video_max_frames = 8;
  return budget;
}

inline const Tokenizer& realtok_tokenizer() {
  static const Tokenizer tokenizer = Tokenizer::from_file(model_fixture("tiny-realtok-bf16") + "/tokenizer.json");
  return tokenizer;
}

// The builder without loading any weights: config, chat template and processor configs of the checkpoint.
inline SampleBuilder realtok_sample_builder(SampleOptions options = {}) {
  const std::string dir = model_fixture("tiny-realtok-bf16");
  options.budget = sft_golden_budget();
  return SampleBuilder(realtok_tokenizer(), load_model_config(dir + "/config.json"),
                       load_chat_template(dir),
                       load_image_processor_config(dir + "/preprocessor_config.json"),
                       load_video_processor_config(dir), options);
}

}  // namespace testing
}  // namespace qwen3vl
