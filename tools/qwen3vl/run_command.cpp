#include "run_command.h"

#include <cstdio>
#include <random>

#include "core/timer.h"
#include "engine/generate.h"
#include "engine/loaded_model.h"
#include "engine/prompt.h"
#include "chat_template_option.h"
#include "reply_printer.h"

namespace qwen3vl {
namespace cli {

CLI::App* add_run_command(CLI::App& app, RunOptions& o) {
  CLI::App* run = app.add_subcommand("run", "Generate a reply to one prompt (chat template applied)");
  run->add_option("-m,--model", o.model_dir, "Checkpoint directory (Hugging Face layout)")->required();
  run->add_option("-p,--prompt", o.prompt, "User prompt")->required();
  run->add_option("--system", o.system, "System message (none by default; the chat template may add its own)");
  run->add_flag("--raw", o.raw, "Feed the prompt as is, without the chat template");
  run->add_flag("--verbose-prompt", o.verbose_prompt, "Print the prompt text and its token ids to stderr");
  run->add_option("-n,--n-predict", o.n_predict,
                  "Maximum new tokens (default: generation_config max_new_tokens, else 256)");
  run->add_option("--temp", o.temperature, "Temperature; 0 means greedy (default: generation_config.json)");
  run->add_option("--top-k", o.top_k, "Top-k sampling; 0 disables (default: generation_config.json)");
  run->add_option("--top-p", o.top_p, "Top-p (nucleus) sampling; 1 disables (default: generation_config.json)");
  run->add_option("--min-p", o.min_p, "Min-p sampling; 0 disables");
  run->add_option("--repeat-penalty", o.repeat_penalty, "Repetition penalty over prompt and output (1 = off)");
  run->add_option("--presence-penalty", o.presence_penalty, "Presence penalty over the output (0 = off)");
  run->add_option("--frequency-penalty", o.frequency_penalty, "Frequency penalty over the output (0 = off)");
  run->add_option("-s,--seed", o.seed, "Random seed (default: random)");
  run->add_option("--stop", o.stop, "Stop string (repeatable); the output ends before it");
  run->add_option("-t,--threads", o.threads, "Threads (default: one per processor core)")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--reasoning-format", o.reasoning_format,
                  "Thinking checkpoints: 'separate' prints the reasoning to stderr and the answer to stdout, "
                  "'none' prints the reply as generated")
      ->check(CLI::IsMember({"separate", "none"}));
  add_weight_format_options(run, o.formats);
  add_chat_template_option(run, o.chat_template_file);
  add_lora_options(run, o.lora);
  add_image_options(run, o.images);
  add_video_options(run, o.videos);
  return run;
}

namespace {

SamplingParams sampling_from(const RunOptions& o, const GenerationConfig& defaults) {
  SamplingParams params = default_sampling(defaults);
  if (o.temperature) {
    params.temperature = *o.temperature;
    params.do_sample = *o.temperature > 0.0f;
  }
  if (o.top_k) params.top_k = *o.top_k;
  if (o.top_p) params.top_p = *o.top_p;
  if (o.min_p) params.min_p = *o.min_p;
  if (o.repeat_penalty) params.repetition_penalty = *o.repeat_penalty;
  params.presence_penalty = o.presence_penalty;
  params.frequency_penalty = o.frequency_penalty;
  params.seed = o.seed ? *o.seed : std::random_device{}();
  return params;
}

}  // namespace

int run_command(const RunOptions& o) {
  Stopwatch load_clock;
  LoadOptions load_options;
  load_options.threads = o.threads;
  apply_weight_formats(o.formats, load_options);
  load_options.chat_template_file = o.chat_template_file;
  const auto model = load_model(o.model_dir, load_options);
  GenerationRequest request;
  request.adapters = load_lora_specs(o.lora, *model);
  const double load_seconds = load_clock.seconds();

  request.images = load_images(o.images, *model);
  request.videos = load_videos(o.videos, *model);
  const int64_t merge = model->config.vision_config.spatial_merge_size;
  std::string chat_text = o.prompt;
  if (!o.raw)
    chat_text = request.videos.empty()
                    ? render_chat(*model, single_turn(o.system, o.prompt, request.images.size()))
                    : render_chat(*model, single_turn_with_media(o.system, o.prompt, o.videos.media_order));
  const std::string prompt_text = expand_video_placeholders(
      expand_image_placeholders(chat_text, request.images, merge), request.videos, merge,
      model->config.vision_config.temporal_patch_size, placeholder_style(o.videos));
  request.prompt_ids = encode_text(*model, prompt_text);
  if (o.verbose_prompt) {
    std::fprintf(stderr, "prompt text:\n%s\nprompt ids:", prompt_text.c_str());
    for (int32_t id : request.prompt_ids) std::fprintf(stderr, " %d", id);
    std::fprintf(stderr, "\n");
  }
  request.max_new_tokens = o.n_predict >= 0 ? o.n_predict : model->generation.max_new_tokens.value_or(256);
  request.sampling = sampling_from(o, model->generation);
  for (int64_t id : model->generation.eos_token_id) request.stop_token_ids.push_back(static_cast<int32_t>(id));
  request.stop_strings = o.stop;

  // Thinking template: the prompt ends inside "<think>", so the reply starts with the reasoning.
  ReplyPrinter printer(model->chat_template.kind() == ChatTemplateKind::Thinking && !o.raw && o.reasoning_format != "none");
  const GenerationResult result = generate(*model, request, [&printer](const std::string& text) {
    printer.print(text);
    return true;
  });
  printer.finish();
  std::fputc('\n', stdout);
  if (o.images.grounding) print_grounding(result.text, request.images);
  std::fflush(stdout);
  const GenerationStats& s = result.stats;
  if (!request.images.empty() || !request.videos.empty()) std::fprintf(stderr, "vision %.2f s | ", s.vision_seconds);
  std::fprintf(stderr,
               "load %.2f s | prompt %lld tokens, %.1f tok/s | generated %lld tokens, %.1f tok/s | finish: %s\n",
               load_seconds, static_cast<long long>(s.prompt_tokens),
               s.prefill_seconds > 0 ? s.prompt_tokens / s.prefill_seconds : 0.0,
               static_cast<long long>(s.generated_tokens),
               s.decode_seconds > 0 ? s.generated_tokens / s.decode_seconds : 0.0, result.finish_reason.c_str());
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
