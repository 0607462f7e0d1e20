#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

namespace qwen3vl {
namespace {

constexpr float kRemoved = -std::numeric_limits<float>::infinity();

int32_t argmax(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// TopKLogitsWarper: keep every token whose logit is >= the k-th largest (ties at the boundary survive).
void keep_top_k(std::vector<float>& logits, int64_t k) {
  if (k <= 0 || k >= static_cast<int64_t>(logits.size())) return;
  std::vector<float> sorted(logits);
  std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<float>());
  const float threshold = sorted[static_cast<size_t>(k - 1)];
  for (float& logit : logits)
    if (logit < threshold) logit = kRemoved;
}

std::vector<float> softmax(const std::vector<float>& logits) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  std::vector<float> probs(logits.size());
  double total = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) total += probs[i] = std::exp(logits[i] - max_logit);
  for (float& p : probs) p = static_cast<float>(p / total);
  return probs;
}

// TopPLogitsWarper: sort ascending, drop tokens whose cumulative probability is <= 1 - top_p, keep at least one.
void keep_top_p(std::vector<float>& logits, float top_p) {
  if (top_p >= 1.0f) return;
  const std::vector<float> probs = softmax(logits);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] < logits[b]; });
  float cumulative = 0.f;
  for (size_t i = 0; i + 1 < order.size(); ++i) {  // the most likely token is always kept
    cumulative += probs[order[i]];
    if (cumulative <= 1.0f - top_p) logits[order[i]] = kRemoved;
  }
}

// MinPLogitsWarper: drop tokens whose probability is below min_p times the top probability.
void keep_min_p(std::vector<float>& logits, float min_p) {
  if (min_p <= 0.0f) return;
  const std::vector<float> probs = softmax(logits);
  const float threshold = min_p * *std::max_element(probs.begin(), probs.end());
  for (size_t i = 0; i < logits.size(); ++i)
    if (probs[i] < threshold) logits[i] = kRemoved;
}

}  // namespace

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

void Sampler::apply_penalties(std::vector<float>& logits, const std::vector<int32_t>& context,
                              const std::vector<int32_t>& generated) const {
  if (params_.repetition_penalty != 1.0f) {
    const std::unordered_set<int32_t> seen(context.begin(), context.end());
    for (int32_t id : seen) {
      float& logit = logits[static_cast<size_t>(id)];
      logit = logit < 0 ? logit * params_.repetition_penalty : logit / params_.repetition_penalty;
    }
  }
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    std::unordered_map<int32_t, int> counts;
    for (int32_t id : generated) ++counts[id];
    for (const auto& [id, count] : counts)
      logits[static_cast<size_t>(id)] -= params_.presence_penalty + params_.frequency_penalty * count;
  }
}

int32_t Sampler::draw(std::vector<float>& logits) {
  for (float& logit : logits) logit /= params_.temperature;
  keep_top_k(logits, params_.top_k);
  keep_top_p(logits, params_.top_p);
  keep_min_p(logits, params_.min_p);
  const std::vector<float> probs = softmax(logits);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  double target = uniform(rng_);
  for (size_t i = 0; i < probs.size(); ++i) {
    target -= probs[i];
    if (target < 0 && probs[i] > 0) return static_cast<int32_t>(i);
  }
  return argmax(logits);  // rounding left the draw past the end: take the most likely token
}

int32_t Sampler::next(std::vector<float>& logits, const std::vector<int32_t>& context,
                      const std::vector<int32_t>& generated) {
  apply_penalties(logits, context, generated);
  if (!params_.do_sample || params_.temperature <= 0.0f) return argmax(logits);
  return draw(logits);
}

}  // namespace qwen3vl
