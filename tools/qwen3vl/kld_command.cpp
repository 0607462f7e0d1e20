#include "kld_command.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "engine/logit_divergence.h"
#include "engine/prompt.h"

namespace qwen3vl {
namespace cli {

CLI::App* add_kld_command(CLI::App& app, KldOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "kld", "KL divergence and top-1 agreement of converted weights against the weights as shipped");
  cmd->add_option("-m,--model", o.model_dir, "Checkpoint directory (Hugging Face layout)")->required();
  add_weight_format_options(cmd, o.formats);
  auto* file = cmd->add_option("-f,--file", o.text_file, "Text file to score (tokenized as is)");
  cmd->add_option("-p,--prompt", o.prompt, "Text to score")->excludes(file);
  cmd->add_option("--tokens", o.tokens, "Positions to compare: the first N tokens of the text (default 256)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("-t,--threads", o.threads, "Threads (default: one per processor core)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", o.json, "Print one JSON object");
  return cmd;
}

int kld_command(const KldOptions& o) {
  if (o.formats.weight_format.empty() && o.formats.vision_format.empty())
    throw_error("kld: give --weight-format (the format to compare with the weights as shipped)");
  std::string text = o.prompt;
  if (!o.text_file.empty()) {
    std::ifstream in(o.text_file, std::ios::binary);
    if (!in) throw_error(o.text_file, ": cannot read");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  if (text.empty()) throw_error("kld: give the text to score with -f FILE or -p TEXT");

  LoadOptions base_options;
  base_options.threads = o.threads;
  const auto base = load_model(o.model_dir, base_options);
  LoadOptions converted_options = base_options;
  apply_weight_formats(o.formats, converted_options);
  const auto converted = load_model(o.model_dir, converted_options);
  std::vector<int32_t> ids = encode_text(*base, text);
  if (static_cast<int64_t>(ids.size()) > o.tokens) ids.resize(static_cast<size_t>(o.tokens));
  if (ids.empty()) throw_error("kld: the text has no tokens");
  const LogitDivergence d = compare_logits(*base, *converted, ids);
  const std::string label = o.formats.weight_format.empty() ? "as shipped" : o.formats.weight_format;

  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model_dir;
    j["weight_format"] = label;
    j["vision_format"] = o.formats.vision_format.empty() ? "as shipped" : o.formats.vision_format;
    j["positions"] = d.kl.size();
    j["mean_kl"] = d.mean_kl;
    j["max_kl"] = d.max_kl;
    j["top1_agreement"] = d.top1_agreement;
    j["clear_margin"] = LogitDivergence::kClearMargin;
    j["clear_positions"] = d.clear_positions;
    j["clear_top1_agreement"] = d.clear_top1_agreement;
    j["margin"] = d.margin;
    j["kl"] = d.kl;
    j["top1_base"] = d.top1_base;
    j["top1_converted"] = d.top1_other;
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("position  token  KL(base||%s)  top-1 base  margin  top-1 %s\n", label.c_str(), label.c_str());
  for (size_t i = 0; i < d.kl.size(); ++i)
    std::printf("%8zu %6d %14.6f %11d %7.3f %10d%s\n", i, ids[i], d.kl[i], d.top1_base[i], d.margin[i],
                d.top1_other[i], d.top1_base[i] == d.top1_other[i] ? "" : "  differs");
  std::printf("%s vs as shipped, %zu positions: mean KL %.6f, max KL %.6f, top-1 agreement %.2f%% (%.2f%% of the %lld "
              "positions whose top-1 leads by >= %.2f nats)\n",
              label.c_str(), d.kl.size(), d.mean_kl, d.max_kl, 100.0 * d.top1_agreement,
              100.0 * d.clear_top1_agreement, static_cast<long long>(d.clear_positions), LogitDivergence::kClearMargin);
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
