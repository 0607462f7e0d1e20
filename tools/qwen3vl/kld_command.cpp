#include "kld_command.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "engine/logit_divergence.h"
#include "engine/prompt.h"
#include "io/logits_file.h"

namespace qwen3vl {
namespace cli {

CLI::App* add_kld_command(CLI::App& app, KldOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "kld", "KL divergence and top-1 agreement of converted weights against the weights as shipped, or of this "
             "engine against saved logits");
  cmd->add_option("-m,--model", o.model_dir, "Checkpoint directory (Hugging Face layout)")->required();
  add_weight_format_options(cmd, o.formats);
  auto* file = cmd->add_option("-f,--file", o.text_file, "Text file to score (tokenized as is)");
  auto* prompt = cmd->add_option("-p,--prompt", o.prompt, "Text to score")->excludes(file);
  cmd->add_option("--image", o.images.paths,
                  "Image for the text's <|image_pad|> runs, in order (repeatable): one <|image_pad|> per image in a "
                  "-f / -p text, the expanded runs in a --base-logits file")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tokens", o.tokens, "Positions to compare: the first N tokens of the text (default 256)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--base-logits", o.base_logits,
                  "Logits file to compare with (format: docs/performance.md, Accuracy): its tokens are scored, and "
                  "its rows are the base distribution")
      ->excludes(file)
      ->excludes(prompt);
  cmd->add_option("--save-logits", o.save_logits, "Write this run's logits (the converted weights' with "
                                                   "--weight-format) to a logits file");
  cmd->add_option("-t,--threads", o.threads, "Threads (default: one per processor core)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", o.json, "Print one JSON object");
  return cmd;
}

namespace {

std::string read_text(const KldOptions& o) {
  std::string text = o.prompt;
  if (!o.text_file.empty()) {
    std::ifstream in(o.text_file, std::ios::binary);
    if (!in) throw_error(o.text_file, ": cannot read");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  if (text.empty()) throw_error("kld: give the text to score with -f FILE or -p TEXT (or --base-logits FILE)");
  return text;
}

void print_report(const KldOptions& o, const std::vector<int32_t>& ids, const LogitDivergence& d,
                  const std::string& base_label, const std::string& label) {
  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model_dir;
    j["base"] = base_label;
    j["weight_format"] = o.formats.weight_format.empty() ? "as shipped" : o.formats.weight_format;
    j["vision_format"] = o.formats.vision_format.empty() ? "as shipped" : o.formats.vision_format;
    j["positions"] = d.kl.size();
    j["mean_kl"] = d.mean_kl;
    j["max_kl"] = d.max_kl;
    j["top1_agreement"] = d.top1_agreement;
    j["clear_margin"] = LogitDivergence::kClearMargin;
    j["clear_positions"] = d.clear_positions;
    j["clear_top1_agreement"] = d.clear_top1_agreement;
    j["margin"] = d.margin;
    j["logit_margin"] = d.logit_margin;
    j["kl"] = d.kl;
    j["top1_base"] = d.top1_base;
    j["top1_converted"] = d.top1_other;
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("position  token  KL(base||%s)  top-1 base  margin  top-1 %s\n", label.c_str(), label.c_str());
  for (size_t i = 0; i < d.kl.size(); ++i)
    std::printf("%8zu %6d %14.6f %11d %7.3f %10d%s\n", i, ids[i], d.kl[i], d.top1_base[i], d.margin[i],
                d.top1_other[i], d.top1_base[i] == d.top1_other[i] ? "" : "  differs");
  std::printf("%s vs %s, %zu positions: mean KL %.6f, max KL %.6f, top-1 agreement %.2f%% (%.2f%% of the %lld "
              "positions whose top-1 leads by >= %.2f nats)\n",
              label.c_str(), base_label.c_str(), d.kl.size(), d.mean_kl, d.max_kl, 100.0 * d.top1_agreement,
              100.0 * d.clear_top1_agreement, static_cast<long long>(d.clear_positions), LogitDivergence::kClearMargin);
  std::string margins;  // where top-1 differs: how far apart the base's two best logits were
  for (size_t i = 0; i < d.kl.size(); ++i)
    if (d.top1_base[i] != d.top1_other[i]) margins += (margins.empty() ? "" : ", ") + std::to_string(d.logit_margin[i]);
  if (!margins.empty()) std::printf("base top-1 minus top-2 logit where top-1 differs: %s\n", margins.c_str());
}

}  // namespace

int kld_command(const KldOptions& o) {
  const bool converted = !o.formats.weight_format.empty() || !o.formats.vision_format.empty();
  if (!converted && o.base_logits.empty() && o.save_logits.empty())
    throw_error("kld: give --weight-format (the format to compare with the weights as shipped), --base-logits "
                "FILE or --save-logits FILE");
  LoadOptions load_options;
  load_options.threads = o.threads;
  load_options.require_tokenizer = o.base_logits.empty();  // the file brings its ids
  apply_weight_formats(o.formats, load_options);
  const std::string label = o.formats.weight_format.empty() ? "as shipped" : o.formats.weight_format;

  LogitsFile base;
  std::vector<int32_t> ids;
  if (!o.base_logits.empty()) {
    base = read_logits_file(o.base_logits);
    ids = base.ids;
  }
  const auto model = load_model(o.model_dir, load_options);
  const int64_t vocab = model->config.text_config.vocab_size;
  if (!o.base_logits.empty() && base.vocab != vocab)
    throw_error(o.base_logits, ": rows of ", base.vocab, " logits, but ", o.model_dir, " has a vocabulary of ", vocab,
                " (config.json vocab_size)");
  const std::vector<ProcessedImage> images = load_images(o.images, *model);
  if (o.base_logits.empty()) {
    const int64_t merge = model->config.vision_config.spatial_merge_size;
    ids = encode_text(*model, expand_image_placeholders(read_text(o), images, merge));
    if (static_cast<int64_t>(ids.size()) > o.tokens) {
      if (!images.empty())
        throw_error("kld: the text with its images is ", ids.size(), " tokens, over --tokens ", o.tokens,
                    " (an image's tokens are not cut: raise --tokens)");
      ids.resize(static_cast<size_t>(o.tokens));
    }
    if (ids.empty()) throw_error("kld: the text has no tokens");
  }
  LogitsFile ours;
  ours.vocab = vocab;
  ours.ids = ids;
  ours.rows = prompt_logits(*model, ids, images);
  if (!o.save_logits.empty()) {
    write_logits_file(o.save_logits, ours);
    std::fprintf(stderr, "kld: wrote the logits of %zu positions to %s\n", ids.size(), o.save_logits.c_str());
  }
  const int64_t n = static_cast<int64_t>(ids.size());
  if (!o.base_logits.empty()) {
    print_report(o, ids, compare_logit_rows(base.rows.data(), ours.rows.data(), n, vocab), o.base_logits, label);
  } else if (converted) {
    LoadOptions shipped_options = load_options;
    shipped_options.weight_format.reset();
    shipped_options.vision_format.reset();
    const auto shipped = load_model(o.model_dir, shipped_options);
    const std::vector<float> shipped_rows = prompt_logits(*shipped, ids, images);
    print_report(o, ids, compare_logit_rows(shipped_rows.data(), ours.rows.data(), n, vocab), "as shipped", label);
  }
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
