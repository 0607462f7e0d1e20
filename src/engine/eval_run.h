// Running a benchmark JSONL (engine/eval.h) through a loaded checkpoint: the file read into entries (a line that
// cannot be parsed becomes an entry with its reason), each item's media preprocessed, its prompt rendered with the
// checkpoint's chat template, greedy generation, the reply scored. `qwen3vl eval` and the Python binding's
// Model.eval both run here; writing predictions, resuming and progress are theirs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/eval.h"
#include "engine/loaded_model.h"
#include "model/lora_adapter.h"
#include "vision/image_processor.h"
#include "vision/video_processor.h"

namespace qwen3vl {

struct EvalEntry {
  int64_t line = 0;   // 1-based line number in the file
  bool ok = true;     // false: the line could not be parsed (or repeats an id); `error` says why
  EvalItem item;
  std::string error;
};

// The non-blank lines of `path`, at most `limit` of them (0: all). A repeated id makes the later entry fail, so ids
// stay unique for a resumed run. Throws Error naming the file when it cannot be opened.
std::vector<EvalEntry> read_eval_entries(const std::string& path, int64_t limit = 0);

struct EvalRunOptions {
  std::string system;                               // system message of every item ("": none)
  int64_t max_new_tokens = 64;
  PixelBudget budget;                               // per image (default: preprocessor_config.json)
  std::shared_ptr<const AdaptedWeights> adapters;   // LoRA adapters (null: the checkpoint alone)
};

struct EvalPrediction {
  std::string text;              // the reply
  std::vector<int32_t> tokens;   // its ids, a final stop token included
  EvalScore score;
};

// Runs items one at a time, greedy (no penalties, whatever generation_config.json says).
class EvalRunner {
 public:
  EvalRunner(const LoadedModel& model, EvalRunOptions options);

  // Throws Error naming the media file at fault (missing, undecodable) or the reason generation failed.
  EvalPrediction run(const EvalItem& item);

 private:
  const LoadedModel& model_;
  EvalRunOptions options_;
  std::optional<VideoProcessorConfig> video_config_;  // read at the first video item
  std::vector<int32_t> stop_ids_;
};

// Called once per entry run, in order: `prediction` is null when the entry failed, `error` then says why.
using EvalItemCallback =
    std::function<void(const EvalEntry& entry, const EvalPrediction* prediction, const std::string& error)>;

// Runs every entry (those that failed to parse count as failed, unrun) and adds the scores to `tally` (which may
// hold a resumed run's scores already).
void run_eval(EvalRunner& runner, const std::vector<EvalEntry>& entries, EvalTally& tally,
              const EvalItemCallback& on_item = {});

// The predictions-file record of an item: id, line, category, metric, prediction, answer, extracted (choice items),
// score, tokens.
nlohmann::json prediction_record(const EvalItem& item, const EvalPrediction& prediction);

}  // namespace qwen3vl
