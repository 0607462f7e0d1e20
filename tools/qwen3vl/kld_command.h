// `qwen3vl kld -m DIR --weight-format q8 [-f TEXTFILE | -p PROMPT] [--tokens N] [--json]`: loads DIR twice, as
// shipped and with the weights converted, runs the same tokens (the text, no chat template) through both and prints
// KL(base || converted) and top-1 agreement per position, then mean and max (engine/logit_divergence.h).
// `--base-logits FILE` compares the model (converted or as shipped) with logits saved elsewhere, on the file's own
// tokens; `--save-logits FILE` writes this run's logits (io/logits_file.h), so another engine can be compared.
// `--image FILE` (repeatable) fills the tokens' <|image_pad|> runs in order: a -f / -p text holds one <|image_pad|>
// per image (expanded to the image's token count, as the processor does), a --base-logits file the expanded runs.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "image_options.h"
#include "weight_format_options.h"

namespace qwen3vl {
namespace cli {

struct KldOptions {
  std::string model_dir, text_file, prompt;
  std::string save_logits, base_logits;
  WeightFormatOptions formats;
  ImageOptions images;  // paths only: the checkpoint's own pixel budget
  int64_t tokens = 256;
  int threads = 0;
  bool json = false;
};

CLI::App* add_kld_command(CLI::App& app, KldOptions& options);
int kld_command(const KldOptions& options);

}  // namespace cli
}  // namespace qwen3vl
