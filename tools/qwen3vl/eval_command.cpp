#include "eval_command.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "core/error.h"
#include "engine/eval_run.h"
#include "engine/loaded_model.h"
#include "chat_template_option.h"
#include "lora_options.h"

namespace qwen3vl {
namespace cli {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string default_predictions_path(const std::string& data) {
  const std::string suffix = ".jsonl";
  std::string stem = data;
  if (stem.size() > suffix.size() && stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0)
    stem.resize(stem.size() - suffix.size());
  return stem + ".predictions.jsonl";
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
  const std::string predictions_path = o.predictions.empty() ? default_predictions_path(o.data) : o.predictions;
  // Every line is read first: parse errors are reported per line, and the total is known for the ETA.
  std::vector<EvalEntry> entries = read_eval_entries(o.data, o.limit);

  EvalTally tally;
  std::set<std::string> done;
  std::string line;
  if (o.resume) {
    std::ifstream prev(predictions_path);
    if (!prev) {
      std::fprintf(stderr, "resume: %s not found; starting from the first item\n", predictions_path.c_str());
    } else {
      std::map<std::string, const EvalItem*> by_id;
      for (const EvalEntry& e : entries)
        if (e.ok) by_id[e.item.id] = &e.item;
      int64_t bad = 0;
      while (std::getline(prev, line)) {
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
  EvalRunOptions run_options;
  run_options.system = o.system;
  run_options.max_new_tokens = o.n_predict;
  run_options.budget.min_pixels = o.min_pixels;
  run_options.budget.max_pixels = o.max_pixels;
  run_options.adapters = load_lora_specs(o.lora, *model);
  EvalRunner runner(*model, run_options);

  std::vector<EvalEntry> todo;
  for (EvalEntry& e : entries)
    if (!(e.ok && done.count(e.item.id))) todo.push_back(std::move(e));
  std::fprintf(stderr, "eval: %zu item(s) in %s, %zu to run, predictions to %s\n", entries.size(), o.data.c_str(),
               todo.size(), predictions_path.c_str());

  const auto start = Clock::now();
  auto last_report = start;
  int64_t run = 0;
  const int64_t total = static_cast<int64_t>(todo.size());
  run_eval(runner, todo, tally, [&](const EvalEntry& e, const EvalPrediction* prediction, const std::string& error) {
    ++run;
    if (prediction) {
      out << prediction_record(e.item, *prediction).dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
      out.flush();
    } else if (!e.ok) {
      std::fprintf(stderr, "item at line %lld: skipped: %s\n", static_cast<long long>(e.line), error.c_str());
    } else {
      std::fprintf(stderr, "item %s (line %lld): skipped: %s\n", e.item.id.c_str(), static_cast<long long>(e.line),
                   error.c_str());
    }
    const auto now = Clock::now();
    if (run == total || std::chrono::duration<double>(now - last_report).count() >= 5.0) {
      last_report = now;
      const double elapsed = std::chrono::duration<double>(now - start).count();
      const double eta = elapsed / static_cast<double>(run) * static_cast<double>(total - run);
      std::fprintf(stderr, "[%lld/%lld] %.1f%% | %s elapsed | ETA %s | accuracy so far %.2f%%\n",
                   static_cast<long long>(run), static_cast<long long>(total),
                   100.0 * run / std::max<int64_t>(total, 1), format_seconds(elapsed).c_str(),
                   format_seconds(eta).c_str(), 100.0 * tally.overall.accuracy());
    }
  });
  std::printf("%s", tally.table().c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
