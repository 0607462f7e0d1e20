// A whole fine-tuning run, what `qwen3vl finetune` does: read the datasets, build every sample (media through the
// engine's preprocessing, labels as qwen-vl-finetune masks them), group them into micro-batches (a per-device batch
// flattened into one row, or packs), then optimizer steps (train/trainer.h) over a seeded, resumable stream of
// micro-batches, with progress, a JSONL log, periodic checkpoints and the final adapter or model.
//
// The micro-batch stream: the units (micro-batches) in dataset order, shuffled per epoch with a generator seeded by
// seed + epoch when shuffling; step s of a run on W ranks with accumulation GA takes stream entries
// s*GA*W + r*GA + a on rank r (a < GA). Whatever the rank count, a step sees the same GA*W micro-batches, so
// `mpirun -np 2` with accumulation 1 computes what one process computes with accumulation 2; and a run resumed at
// step s continues the stream where it stopped, since the stream depends only on the seed.
//
// Output folder: adapter_config.json + adapter_model.safetensors (LoRA; PEFT's format) or a Hugging Face checkpoint
// (full / mixed without LoRA), train_log.jsonl (one line per step), and checkpoint-<step>/ every save_steps: the
// same outputs plus train_state.safetensors / train_state.json / run.json for --resume.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "train/module_selection.h"
#include "train/sample_builder.h"
#include "train/sft_data.h"
#include "train/trainer.h"

namespace qwen3vl {

struct FinetuneOptions {
  std::string model_dir;
  std::vector<std::string> datasets;  // JSON / JSONL files (train/sft_data.h)
  SftReadOptions read;
  BadSamplePolicy bad_samples = BadSamplePolicy::Stop;
  std::string output_dir;

  TuneFlags tune;
  LoraSpec lora;
  std::optional<DType> weight_format;  // the frozen base's format (LoRA on a bf16 / q8 / q4 base)
  std::string chat_template_file;      // rendered instead of the base's chat template (--chat-template-file)
  SampleOptions samples;

  TrainerOptions trainer;              // optimizer, clipping, accumulation; the schedule's length is set here
  LrScheduleKind lr_scheduler = LrScheduleKind::kLinear;  // TrainingArguments.lr_scheduler_type's default
  double warmup = 0.0;                 // steps (>= 1) or a ratio of the total (< 1), as TrainingArguments reads it
  int64_t max_steps = 0;               // > 0: the run's length in optimizer steps, overriding epochs
  double epochs = 3.0;                 // TrainingArguments.num_train_epochs' default
  int64_t batch_size = 1;              // samples per micro-batch, concatenated into one row
  int64_t pack_length = 0;             // > 0: pack samples into rows of at most this many tokens instead
  int64_t pack_window = 0;             // packing looks this many samples ahead (0: the whole dataset)
  bool shuffle = true;
  uint64_t seed = 42;                  // TrainingArguments.seed's default: data order and LoRA initialisation

  int64_t save_steps = 0;              // > 0: a resumable checkpoint every this many steps
  std::string resume;                  // a checkpoint-<step> folder, or "latest" for the newest in output_dir
  int threads = 0;
};

// Runs it. Progress lines (loading, skipped samples, one per step, saving) go to `progress` on rank 0.
// Throws Error naming the file, line, flag or tensor at fault.
void finetune(const FinetuneOptions& options, const std::function<void(const std::string&)>& progress);

// Checks DIR/run.json, written beside a checkpoint's training state, against the resuming run's `fingerprint` (the
// data, seed, ranks, accumulation and length it was made with). Throws Error naming run.json and the first key that
// differs. Exposed for fuzzing.
void check_resumable(const std::string& dir, const nlohmann::json& fingerprint);

}  // namespace qwen3vl
