#include "finetune_command.h"

#include <cstdio>

#include "chat_template_option.h"
#include "core/timer.h"

namespace qwen3vl {
namespace cli {
namespace {

void add_data_options(CLI::App* cmd, FinetuneCommandOptions& o) {
  FinetuneOptions& r = o.run;
  cmd->add_option("-m,--model", r.model_dir, "Base checkpoint directory (Hugging Face layout)")->required();
  add_chat_template_option(cmd, r.chat_template_file);
  cmd->add_option("--data", r.datasets, "Dataset file: JSON list or JSONL of qwen-vl-finetune `conversations` or "
                                        "OpenAI `messages` records (repeatable)")
      ->required();
  cmd->add_option("--media-root", r.read.media_root, "Folder image and video paths resolve against (default: "
                                                     "each dataset file's folder)");
  cmd->add_flag("--allow-outside-media-root", r.read.allow_paths_outside_root,
                "Accept absolute media paths and paths leaving the media root");
  cmd->add_flag("--skip-bad-samples", o.skip_bad_samples,
                "Skip a record that cannot be used (its FILE:LINE and reason are printed) instead of stopping");
  cmd->add_option("-o,--output", r.output_dir, "Output folder: the adapter or checkpoint, train_log.jsonl and "
                                               "checkpoint-<step> folders")
      ->required();
  cmd->add_option("--model-max-length", r.samples.max_length, "Longest sample in tokens; longer ones are errors "
                                                              "(skipped with --skip-bad-samples). 0: no limit");
  cmd->add_option("--min-pixels", o.min_pixels, "Image pixel budget, lower bound (default: the checkpoint's)");
  cmd->add_option("--max-pixels", o.max_pixels, "Image pixel budget, upper bound (default: the checkpoint's)");
  cmd->add_option("--video-min-pixels", o.video_min_pixels, "Video pixel budget over all frames, lower bound");
  cmd->add_option("--video-max-pixels", o.video_max_pixels, "Video pixel budget over all frames, upper bound");
  cmd->add_option("--video-fps", o.video_fps, "Video frames sampled per second");
  cmd->add_option("--video-min-frames", o.video_min_frames, "Fewest video frames");
  cmd->add_option("--video-max-frames", o.video_max_frames, "Most video frames");
  cmd->add_option("--label-rule", o.label_rule, "Which \"assistant\" tokens open a supervised span: any-assistant "
                                                "(the released qwen-vl-finetune) or after-im-start (its fix)")
      ->check(CLI::IsMember({"any-assistant", "after-im-start"}));
  cmd->add_option("--batch-size,--per-device-train-batch-size", r.batch_size,
                  "Samples per micro-batch, concatenated into one row with per-sample attention");
  cmd->add_option("--pack-length", r.pack_length, "Pack samples into rows of at most this many tokens (first fit) "
                                                  "instead of --batch-size");
  cmd->add_option("--pack-window", r.pack_window, "Samples packing looks ahead (0: all)");
  cmd->add_flag("--no-shuffle", o.no_shuffle, "Keep the dataset order (default: shuffled per epoch by --seed)");
}

void add_model_options(CLI::App* cmd, FinetuneCommandOptions& o) {
  FinetuneOptions& r = o.run;
  cmd->add_flag("--tune-mm-llm", r.tune.tune_mm_llm, "Train the language model fully (and lm_head)");
  cmd->add_flag("--tune-mm-mlp", r.tune.tune_mm_mlp, "Train the merger fully");
  cmd->add_flag("--tune-mm-vision", r.tune.tune_mm_vision, "Train the vision tower fully (DeepStack mergers too, "
                                                           "unless --no-tune-deepstack)");
  cmd->add_flag("--tune-deepstack", o.tune_deepstack, "Train the DeepStack mergers fully");
  cmd->add_flag("--no-tune-deepstack", o.no_tune_deepstack, "Keep the DeepStack mergers frozen");
  cmd->add_option("--lora-target", r.lora.target_modules,
                  "LoRA on these modules (PEFT's target_modules: names or path suffixes, or all-linear); "
                  "repeatable or comma separated")
      ->delimiter(',');
  cmd->add_option("--lora-r", r.lora.r, "LoRA rank");
  cmd->add_option("--lora-alpha", r.lora.alpha, "LoRA alpha (scaling alpha / r, or alpha / sqrt(r) with rsLoRA)");
  cmd->add_option("--lora-dropout", r.lora.dropout, "LoRA dropout (only 0 is supported)");
  cmd->add_flag("--use-rslora", r.lora.use_rslora, "rsLoRA scaling");
  cmd->add_flag("--use-dora", r.lora.use_dora, "DoRA (weight-decomposed LoRA)");
  cmd->add_option("--weight-format", o.weight_format, "Run the frozen base in this format (LoRA only): bf16, q8, q4")
      ->check(CLI::IsMember({"bf16", "q8", "q4"}));
  cmd->add_flag("--gradient-checkpointing", r.trainer.checkpoint_layers,
                "Recompute each layer's activations in the backward (less memory, more time)");
}

void add_optimizer_options(CLI::App* cmd, FinetuneCommandOptions& o) {
  FinetuneOptions& r = o.run;
  OptimizerSettings& opt = r.trainer.optimizer;
  cmd->add_option("--learning-rate,--lr", opt.learning_rate, "Peak learning rate");
  cmd->add_option("--mm-projector-lr", o.mm_projector_lr, "Learning rate of the mergers (0: --learning-rate)");
  cmd->add_option("--vision-tower-lr", o.vision_tower_lr, "Learning rate of the vision tower (with "
                                                          "--mm-projector-lr, as qwen-vl-finetune reads it)");
  cmd->add_option("--weight-decay", opt.weight_decay, "AdamW weight decay (not on norms and biases)");
  cmd->add_option("--adam-beta1", opt.beta1, "AdamW beta1");
  cmd->add_option("--adam-beta2", opt.beta2, "AdamW beta2");
  cmd->add_option("--adam-epsilon", opt.eps, "AdamW epsilon");
  cmd->add_option("--max-grad-norm", r.trainer.max_grad_norm, "Clip the global gradient norm (0: no clipping)");
  cmd->add_option("--lr-scheduler", o.lr_scheduler, "constant, constant_with_warmup, linear or cosine")
      ->check(CLI::IsMember({"constant", "constant_with_warmup", "linear", "cosine"}));
  cmd->add_option("--warmup-steps", r.warmup, "Warmup steps (a value below 1 is a ratio of the total)");
  cmd->add_option("--warmup-ratio", o.warmup_ratio, "Warmup as a ratio of the total steps");
  cmd->add_option("--gradient-accumulation-steps", r.trainer.gradient_accumulation_steps,
                  "Micro-batches per optimizer step (per rank)");
  cmd->add_option("--max-steps", r.max_steps, "Optimizer steps (overrides --epochs)");
  cmd->add_option("--epochs,--num-train-epochs", r.epochs, "Passes over the data");
  cmd->add_option("--seed", r.seed, "Seed of the data order and the LoRA initialisation");
  cmd->add_option("--save-steps", r.save_steps, "Write a resumable checkpoint-<step> every N steps (0: only the "
                                                "final output)");
  cmd->add_option("--resume", r.resume, "Continue from a checkpoint-<step> folder, or `latest` in --output");
  cmd->add_option("-t,--threads", r.threads, "Threads (default: one per processor core)")
      ->check(CLI::NonNegativeNumber);
}

template <typename T>
std::optional<T> positive(T value) {
  return value > 0 ? std::optional<T>(value) : std::nullopt;
}

}  // namespace

CLI::App* add_finetune_command(CLI::App& app, FinetuneCommandOptions& o) {
  CLI::App* cmd = app.add_subcommand("finetune", "Fine-tune a checkpoint: LoRA / rsLoRA / DoRA, full or mixed, on "
                                                 "images, videos and text, with PyTorch's gradients");
  add_data_options(cmd, o);
  add_model_options(cmd, o);
  add_optimizer_options(cmd, o);
  return cmd;
}

int finetune_command(FinetuneCommandOptions& o) {
  FinetuneOptions& r = o.run;
  r.bad_samples = o.skip_bad_samples ? BadSamplePolicy::Skip : BadSamplePolicy::Stop;
  r.shuffle = !o.no_shuffle;
  if (o.tune_deepstack) r.tune.tune_deepstack = true;
  if (o.no_tune_deepstack) r.tune.tune_deepstack = false;
  r.lr_scheduler = parse_lr_schedule(o.lr_scheduler);
  if (o.warmup_ratio > 0) r.warmup = o.warmup_ratio;
  if (o.mm_projector_lr > 0) r.trainer.optimizer.mm_projector_lr = o.mm_projector_lr;
  if (o.vision_tower_lr >= 0) r.trainer.optimizer.vision_tower_lr = o.vision_tower_lr;
  if (o.weight_format == "bf16") r.weight_format = DType::BF16;
  if (o.weight_format == "q8") r.weight_format = DType::Q8;
  if (o.weight_format == "q4") r.weight_format = DType::Q4;
  r.samples.span_rule =
      o.label_rule == "after-im-start" ? AssistantSpanRule::AfterImStart : AssistantSpanRule::AnyAssistantToken;
  MediaBudget& b = r.samples.budget;
  b.min_pixels = positive(o.min_pixels);
  b.max_pixels = positive(o.max_pixels);
  b.video_min_pixels = positive(o.video_min_pixels);
  b.video_max_pixels = positive(o.video_max_pixels);
  b.video_fps = positive(o.video_fps);
  b.video_min_frames = positive(o.video_min_frames);
  b.video_max_frames = positive(o.video_max_frames);
  Stopwatch clock;
  finetune(r, [&clock](const std::string& line) {
    std::fprintf(stderr, "finetune [%7.1f s] %s\n", clock.seconds(), line.c_str());
  });
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
