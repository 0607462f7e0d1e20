#include "engine/logit_divergence.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "engine/vision_prefill.h"
#include "model/mrope.h"

namespace qwen3vl {
namespace {

// log-softmax of one row in double.
void log_softmax(const float* logits, int64_t count, std::vector<double>& out) {
  out.resize(static_cast<size_t>(count));
  const double max_value = *std::max_element(logits, logits + count);
  double sum = 0;
  for (int64_t i = 0; i < count; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_value);
  const double log_sum = std::log(sum) + max_value;
  for (int64_t i = 0; i < count; ++i) out[i] = static_cast<double>(logits[i]) - log_sum;
}

void check_vocabulary(const LoadedModel& model, const std::vector<int32_t>& ids) {
  const int64_t vocab = model.config.text_config.vocab_size;
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      throw_error("token ", ids[i], " at position ", i, " is outside the vocabulary of ", model.dir, " (", vocab,
                  " tokens)");
}

}  // namespace

std::vector<float> text_logits(const LoadedModel& model, const std::vector<int32_t>& ids, int64_t chunk) {
  const int64_t vocab = model.config.text_config.vocab_size, hidden = model.config.text_config.hidden_size;
  const int64_t n = static_cast<int64_t>(ids.size());
  check_vocabulary(model, ids);
  KVCache cache = model.decoder->make_cache(n);
  DecoderWorkspace work;
  std::vector<float> embeds, logits, rows;
  rows.reserve(static_cast<size_t>(n * vocab));
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t count = std::min(chunk, n - start);
    embeds.resize(static_cast<size_t>(count * hidden));
    model.decoder->embed(ids.data() + start, count, embeds.data());
    model.decoder->forward(embeds.data(), count, text_positions(start, count), cache, work, LogitsRows::All, logits);
    rows.insert(rows.end(), logits.begin(), logits.begin() + count * vocab);
  }
  return rows;
}

std::vector<float> prompt_logits(const LoadedModel& model, const std::vector<int32_t>& ids,
                                 const std::vector<ProcessedImage>& images) {
  const auto image_tokens = std::count(ids.begin(), ids.end(), static_cast<int32_t>(model.config.image_token_id));
  if (std::count(ids.begin(), ids.end(), static_cast<int32_t>(model.config.video_token_id)) > 0)
    throw_error("the tokens hold <|video_pad|> tokens: scoring video prompts is not supported");
  if (images.empty() && image_tokens > 0)
    throw_error("the tokens hold ", image_tokens, " <|image_pad|> tokens, but no image was given");
  if (images.empty()) return text_logits(model, ids);
  check_vocabulary(model, ids);
  const int64_t n = static_cast<int64_t>(ids.size());
  const PrefillInputs prefill = build_prefill(model, ids, images);
  const DeepstackInjection deepstack = prefill.deepstack();
  KVCache cache = model.decoder->make_cache(n);
  DecoderWorkspace work;
  std::vector<float> logits;
  model.decoder->forward(prefill.embeds.data(), n, prefill.rope.positions, cache, work, LogitsRows::All, logits,
                         nullptr, &deepstack);
  logits.resize(static_cast<size_t>(n * model.config.text_config.vocab_size));
  return logits;
}

LogitDivergence compare_logit_rows(const float* base, const float* other, int64_t n, int64_t vocab) {
  std::vector<double> lp, lq;
  LogitDivergence out;
  for (int64_t i = 0; i < n; ++i) {
    const float* p = base + i * vocab;
    const float* q = other + i * vocab;
    log_softmax(p, vocab, lp);
    log_softmax(q, vocab, lq);
    double kl = 0;
    for (int64_t v = 0; v < vocab; ++v)
      if (lp[v] > -INFINITY) kl += std::exp(lp[v]) * (lp[v] - lq[v]);  // p(v) = 0 adds nothing
    out.kl.push_back(std::max(kl, 0.0));
    const int32_t top = static_cast<int32_t>(std::max_element(p, p + vocab) - p);
    double second = -INFINITY;
    float second_logit = -INFINITY;
    for (int64_t v = 0; v < vocab; ++v)
      if (v != top) {
        second = std::max(second, lp[v]);
        second_logit = std::max(second_logit, p[v]);
      }
    out.top1_base.push_back(top);
    out.top1_other.push_back(static_cast<int32_t>(std::max_element(q, q + vocab) - q));
    out.margin.push_back(lp[top] - second);
    out.logit_margin.push_back(static_cast<double>(p[top]) - static_cast<double>(second_logit));
  }
  int64_t same = 0, clear_same = 0;
  for (size_t i = 0; i < out.kl.size(); ++i) {
    out.mean_kl += out.kl[i];
    out.max_kl = std::max(out.max_kl, out.kl[i]);
    same += out.top1_base[i] == out.top1_other[i];
    if (out.margin[i] >= LogitDivergence::kClearMargin) {
      ++out.clear_positions;
      clear_same += out.top1_base[i] == out.top1_other[i];
    }
  }
  if (out.clear_positions)
    out.clear_top1_agreement = static_cast<double>(clear_same) / static_cast<double>(out.clear_positions);
  if (!out.kl.empty()) {
    out.mean_kl /= static_cast<double>(out.kl.size());
    out.top1_agreement = static_cast<double>(same) / static_cast<double>(out.kl.size());
  }
  return out;
}

LogitDivergence compare_logits(const LoadedModel& base, const LoadedModel& other, const std::vector<int32_t>& ids,
                               int64_t chunk) {
  const int64_t vocab = base.config.text_config.vocab_size, hidden = base.config.text_config.hidden_size;
  if (other.config.text_config.vocab_size != vocab || other.config.text_config.hidden_size != hidden)
    throw_error(other.dir, ": not the same model shape as ", base.dir);
  const std::vector<float> p = text_logits(base, ids, chunk), q = text_logits(other, ids, chunk);
  return compare_logit_rows(p.data(), q.data(), static_cast<int64_t>(ids.size()), vocab);
}

}  // namespace qwen3vl
