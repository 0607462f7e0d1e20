#include "eval_command.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "core/error.h"
#include "engine/eval.h"
#include "engine/generate.h"
#include "engine/loaded_model.h"
#include "engine/prompt.h"
#include "engine/video_prompt.h"
#include "chat_template_option.h"
#include "lora_options.h"
#include "vision/image_decode.h"
#include "vision/video_processor.h"

namespace qwen3vl {
namespace cli {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Runs `load` on a media file; an error whose message does not start with the path gets it as a prefix, so every
// per-item message names the file at fault.
template <typename Load>
void naming_the_file(const std::string& path, Load&& load) {
  try {
    load();
  } catch (const Error& error) {
    const std::string message = error.what();
    if (message.rfind(path, 0) == 0) throw;
    throw_error(path, ": ", message);
  }
}

std::string default_predictions_path(const std::string& data) {
  const std::string suffix = ".jsonl";
  std::string stem = data;
  if (stem.size() > suffix.size() && stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0)
    stem.resize(stem.size() - suffix.size());
  return stem + ".predictions.jsonl";
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string format_seconds(double s) {
  char buf[64];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, static_cast<int>(s) % 3600 / 60);
  return buf;
}

}  // namespace

CLI::App* add_eval_command(CLI::App& app, EvalOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "eval", "Score a checkpoint on a benchmark JSONL (greedy; multiple choice, exact match, ANLS, box IoU)");
  cmd->add_option("-m,--model", o.model_dir, "Checkpoint directory (Hugging Face layout)")->required();
  add_weight_format_options(cmd, o.formats);
  add_chat_template_option(cmd, o.chat_template_file);
  add_lora_options(cmd, o.lora);
  cmd->add_option("--data", o.data,
                  "Benchmark JSONL: one {\"image\"|\"video\", \"question\", \"choices\"?, \"answer\", \"category\"?, "
                  "\"metric\"?, \"fps\"?, \"num_frames\"?} per line; paths relative to the file")
      ->required();
  cmd->add_option("--predictions", o.predictions,
                  "Predictions JSONL to write (default: DATA with .predictions.jsonl in place of .jsonl)");
  cmd->add_flag("--resume", o.resume,
                "Keep the items already in the predictions file and run only the others (an interrupted run)");
  cmd->add_option("--limit", o.limit, "Run only the first N items (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("-n,--n-predict", o.n_predict, "Maximum new tokens per reply (default 64)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--system", o.system, "System message for every item (none by default)");
  cmd->add_option("--min-pixels", o.min_pixels, "Minimum pixels per image (default: preprocessor_config.json)");
  cmd->add_option("--max-pixels", o.max_pixels, "Maximum pixels per image (default: preprocessor_config.json)");
  return cmd;
}

int eval_command(const EvalOptions& o) {
  std::ifstream in(o.data, std::ios::binary);
  if (!in) throw_error(o.data, ": cannot open the benchmark file");
  const std::string base = dir_of(o.data);
  const std::string predictions_path = o.predictions.empty() ? default_predictions_path(o.data) : o.predictions;

  // Read every line first: parse errors are reported per line, and the total is known for the ETA.
  struct Entry {
    int64_t line;
    bool ok;
    EvalItem item;
    std::string error;
  };
  std::vector<Entry> entries;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    Entry e{line_number, true, {}, {}};
    try {
      e.item = parse_eval_item(line, line_number, base);
    } catch (const Error& error) {
      e.ok = false;
      e.error = error.what();
    }
    entries.push_back(std::move(e));
    if (o.limit > 0 && static_cast<int64_t>(entries.size()) >= o.limit) break;
  }

  EvalTally tally;
  std::set<std::string> done;
  {  // duplicate ids would make --resume ambiguous
    std::set<std::string> seen;
    for (Entry& e : entries)
      if (e.ok && !seen.insert(e.item.id).second) {
        e.ok = false;
        e.error = "duplicate id \"" + e.item.id + "\"";
      }
  }
  if (o.resume) {
    std::ifstream prev(predictions_path);
    if (!prev) {
      std::fprintf(stderr, "resume: %s not found; starting from the first item\n", predictions_path.c_str());
    } else {
      std::map<std::string, const EvalItem*> by_id;
      for (const Entry& e : entries)
        if (e.ok) by_id[e.item.id] = &e.item;
      int64_t n = 0, bad = 0;
      while (std::getline(prev, line)) {
        ++n;
        try {
          const json p = json::parse(line);
          const std::string id = p.at("id").get<std::string>();
          if (!by_id.count(id) || done.count(id)) continue;
          done.insert(id);
          tally.add(by_id[id]->category, p.at("score").get<double>());
        } catch (const std::exception&) {
          ++bad;  // typically the half-written last line of an interrupted run: that item runs again
        }
      }
      std::fprintf(stderr, "resume: %zu item(s) already in %s%s\n", done.size(), predictions_path.c_str(),
                   bad ? " (unreadable lines skipped; those items run again)" : "");
    }
  }
  // Rewrite the predictions file with only the kept lines (drops a torn last line), then append.
  std::vector<std::string> kept;
  if (o.resume && !done.empty()) {
    std::ifstream prev(predictions_path);
    std::set<std::string> written;
    while (std::getline(prev, line)) {
      try {
        const json p = json::parse(line);
        const std::string id = p.at("id").get<std::string>();
        if (done.count(id) && written.insert(id).second) kept.push_back(line);
      } catch (const std::exception&) {
      }
    }
  }
  std::ofstream out(predictions_path, std::ios::binary | std::ios::trunc);
  if (!out) throw_error(predictions_path, ": cannot write the predictions file");
  for (const std::string& k : kept) out << k << '\n';
  out.flush();

  LoadOptions load_options;
  apply_weight_formats(o.formats, load_options);
  load_options.chat_template_file = o.chat_template_file;
  const auto model = load_model(o.model_dir, load_options);
  const auto adapters = load_lora_specs(o.lora, *model);
  PixelBudget budget;
  budget.min_pixels = o.min_pixels;
  budget.max_pixels = o.max_pixels;
  std::optional<VideoProcessorConfig> video_config;  // read at the first video item
  std::vector<int32_t> stop_ids;
  for (int64_t id : model->generation.eos_token_id) stop_ids.push_back(static_cast<int32_t>(id));

  int64_t todo = 0;
  for (const Entry& e : entries)
    if (!(e.ok && done.count(e.item.id))) ++todo;
  std::fprintf(stderr, "eval: %zu item(s) in %s, %lld to run, predictions to %s\n", entries.size(), o.data.c_str(),
               static_cast<long long>(todo), predictions_path.c_str());

  const auto start = Clock::now();
  auto last_report = start;
  int64_t run = 0;
  for (const Entry& e : entries) {
    if (e.ok && done.count(e.item.id)) continue;
    ++run;
    if (!e.ok) {
      std::fprintf(stderr, "item at line %lld: skipped: %s\n", static_cast<long long>(e.line), e.error.c_str());
      ++tally.failed;
      continue;
    }
    const EvalItem& item = e.item;
    try {
      GenerationRequest request;
      for (const std::string& path : item.images) {
        if (!file_exists(path)) throw_error(path, ": image file not found");
        naming_the_file(path, [&] {
          request.images.push_back(preprocess_image(decode_image_file(path), model->image_processor, budget));
        });
      }
      // Videos go through the same path as `qwen3vl run --video`: transformers' frame sampling (the checkpoint's
      // fps unless the item sets "fps" / "num_frames"), the budget over all frames, <t.t seconds> stamps per pair.
      for (const std::string& path : item.videos) {
        if (!file_exists(path)) throw_error(path, ": video file not found");
        if (!video_config) video_config = load_video_processor_config(model->dir);
        VideoOptions video_options;
        video_options.sampling.fps = item.video_fps;
        video_options.sampling.num_frames = item.video_num_frames;
        naming_the_file(path, [&] {
          request.videos.push_back(preprocess_video_file(path, *video_config, video_options));
        });
      }
      const int64_t merge = model->config.vision_config.spatial_merge_size;
      std::string chat;
      if (request.videos.empty()) {
        chat = render_chat(*model, single_turn(o.system, eval_prompt(item), request.images.size()));
      } else {  // the item's images first, then its videos
        std::vector<ContentPart::Type> media(request.images.size(), ContentPart::Type::Image);
        media.insert(media.end(), request.videos.size(), ContentPart::Type::Video);
        chat = render_chat(*model, single_turn_with_media(o.system, eval_prompt(item), media));
      }
      request.prompt_ids = encode_text(
          *model, expand_video_placeholders(expand_image_placeholders(chat, request.images, merge), request.videos,
                                            merge, model->config.vision_config.temporal_patch_size));
      request.max_new_tokens = o.n_predict;
      request.adapters = adapters;
      request.sampling = SamplingParams{};  // greedy, no penalties, whatever generation_config.json says
      request.stop_token_ids = stop_ids;
      const GenerationResult result = generate(*model, request);
      const EvalScore score = score_reply(item, result.text);
      tally.add(item.category, score.score);
      json p;
      p["id"] = item.id;
      p["line"] = item.line;
      p["category"] = item.category;
      p["metric"] = item.metric;
      p["prediction"] = result.text;
      p["answer"] = item.answers.size() == 1 ? json(item.answers[0]) : json(item.answers);
      if (item.metric == "choice") p["extracted"] = score.extracted;
      p["score"] = score.score;
      p["tokens"] = result.tokens;
      out << p.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
      out.flush();
    } catch (const Error& error) {
      std::fprintf(stderr, "item %s (line %lld): skipped: %s\n", item.id.c_str(), static_cast<long long>(item.line),
                   error.what());
      ++tally.failed;
    }
    const auto now = Clock::now();
    if (run == todo || std::chrono::duration<double>(now - last_report).count() >= 5.0) {
      last_report = now;
      const double elapsed = std::chrono::duration<double>(now - start).count();
      const double eta = elapsed / static_cast<double>(run) * static_cast<double>(todo - run);
      std::fprintf(stderr, "[%lld/%lld] %.1f%% | %s elapsed | ETA %s | accuracy so far %.2f%%\n",
                   static_cast<long long>(run), static_cast<long long>(todo), 100.0 * run / std::max<int64_t>(todo, 1),
                   format_seconds(elapsed).c_str(), format_seconds(eta).c_str(), 100.0 * tally.overall.accuracy());
    }
  }
  std::printf("%s", tally.table().c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
