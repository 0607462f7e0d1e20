// `qwen3vl eval`: runs a benchmark JSONL (engine/eval.h) through a checkpoint with greedy decoding, writes one
// prediction per item to a JSONL file, and prints accuracy per category and overall. Progress (items done, ETA)
// goes to stderr; --resume continues from the predictions file of an interrupted run. An item that cannot be run
// (malformed line, missing or undecodable media, video input) gets one "item ...: reason" line and the run goes on.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "weight_format_options.h"

namespace qwen3vl {
namespace cli {

struct EvalOptions {
  std::string model_dir;
  WeightFormatOptions formats;
  std::string chat_template_file;  // --chat-template-file, as `run`
  std::vector<std::string> lora;  // --lora DIR[:SCALE], as `run`
  std::string data;
  std::string predictions;  // default: <data without .jsonl>.predictions.jsonl
  bool resume = false;
  int64_t limit = 0;        // 0: every item
  int64_t n_predict = 64;
  std::string system;
  std::optional<int64_t> min_pixels, max_pixels;
};

CLI::App* add_eval_command(CLI::App& app, EvalOptions& options);
int eval_command(const EvalOptions& options);

}  // namespace cli
}  // namespace qwen3vl
