// The sampler filters only the tokens still in play and orders them without sorting the vocabulary; its results must
// be those of the plain algorithm it replaced, kept below as the reference: full-vocabulary softmaxes, a stable sort
// of every id for top-p, the draw over every probability. Compared bit for bit on random logits (Qwen's vocabulary
// of 151936 and small ones, with ties) and mixes of every parameter: the chosen token and the filtered logits
// (which the caller sees) after each of several draws from one seeded stream.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "engine/sampler.h"

namespace qwen3vl {
namespace {

// The plain algorithm (engine/sampler.cpp before the candidate lists), unchanged.
class ReferenceSampler {
 public:
  explicit ReferenceSampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

  int32_t next(std::vector<float>& logits, const std::vector<int32_t>& context, const std::vector<int32_t>& generated) {
    apply_penalties(logits, context, generated);
    if (!params_.do_sample || params_.temperature <= 0.0f) return argmax(logits);
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
    return argmax(logits);
  }

 private:
  static constexpr float kRemoved = -std::numeric_limits<float>::infinity();

  static int32_t argmax(const std::vector<float>& logits) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  static void keep_top_k(std::vector<float>& logits, int64_t k) {
    if (k <= 0 || k >= static_cast<int64_t>(logits.size())) return;
    std::vector<float> sorted(logits);
    std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<float>());
    const float threshold = sorted[static_cast<size_t>(k - 1)];
    for (float& logit : logits)
      if (logit < threshold) logit = kRemoved;
  }
  static std::vector<float> softmax(const std::vector<float>& logits) {
    const float max_logit = *std::max_element(logits.begin(), logits.end());
    std::vector<float> probs(logits.size());
    double total = 0.0;
    for (size_t i = 0; i < logits.size(); ++i) total += probs[i] = std::exp(logits[i] - max_logit);
    for (float& p : probs) p = static_cast<float>(p / total);
    return probs;
  }
  static void keep_top_p(std::vector<float>& logits, float top_p) {
    if (top_p >= 1.0f) return;
    const std::vector<float> probs = softmax(logits);
    std::vector<int32_t> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] < logits[b]; });
    float cumulative = 0.f;
    for (size_t i = 0; i + 1 < order.size(); ++i) {
      cumulative += probs[order[i]];
      if (cumulative <= 1.0f - top_p) logits[order[i]] = kRemoved;
    }
  }
  static void keep_min_p(std::vector<float>& logits, float min_p) {
    if (min_p <= 0.0f) return;
    const std::vector<float> probs = softmax(logits);
    const float threshold = min_p * *std::max_element(probs.begin(), probs.end());
    for (size_t i = 0; i < logits.size(); ++i)
      if (probs[i] < threshold) logits[i] = kRemoved;
  }
  void apply_penalties(std::vector<float>& logits, const std::vector<int32_t>& context,
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

  SamplingParams params_;
  std::mt19937_64 rng_;
};

// Logits like a model's: normal around 0 with a few strong tokens; `ties` rounds them to a coarse grid so that many
// are equal (ties at the top-k boundary, in the top-p order and at the maximum).
std::vector<float> random_logits(size_t vocab, bool ties, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 2.5f);
  std::vector<float> logits(vocab);
  for (float& logit : logits) logit = normal(rng);
  std::uniform_int_distribution<size_t> pick(0, vocab - 1);
  for (int i = 0; i < 5; ++i) logits[pick(rng)] += 12.0f;
  if (ties)
    for (float& logit : logits) logit = std::round(logit * 2.0f) / 2.0f;
  return logits;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Several draws from one seeded stream on fresh logits each time, with the generated ids feeding the penalties.
void expect_same_draws(const SamplingParams& params, size_t vocab, bool ties, uint32_t seed, int steps) {
  std::mt19937 rng(seed);
  Sampler sampler(params);
  ReferenceSampler reference(params);
  std::vector<int32_t> prompt = {0, static_cast<int32_t>(vocab / 2), static_cast<int32_t>(vocab - 1)};
  std::vector<int32_t> generated, context = prompt;
  for (int step = 0; step < steps; ++step) {
    std::vector<float> logits = random_logits(vocab, ties, rng);
    std::vector<float> expected_logits = logits;
    const int32_t token = sampler.next(logits, context, generated);
    const int32_t expected = reference.next(expected_logits, context, generated);
    ASSERT_EQ(token, expected) << "vocab " << vocab << " ties " << ties << " seed " << seed << " step " << step;
    ASSERT_TRUE(same_bits(logits, expected_logits)) << "filtered logits differ, vocab " << vocab << " step " << step;
    generated.push_back(token);
    context.push_back(token);
  }
}

SamplingParams sampling(float temperature, int64_t top_k, float top_p, float min_p, uint64_t seed) {
  SamplingParams params;
  params.do_sample = true;
  params.temperature = temperature;
  params.top_k = top_k;
  params.top_p = top_p;
  params.min_p = min_p;
  params.seed = seed;
  return params;
}

TEST(SamplerEquivalence, SmallVocabulariesEveryParameterMix) {
  uint32_t seed = 1;
  for (size_t vocab : {size_t{1}, size_t{2}, size_t{7}, size_t{50}, size_t{3000}})
    for (bool ties : {false, true})
      for (float temperature : {0.7f, 1.0f, 1.6f})
        for (int64_t top_k : {int64_t{0}, int64_t{1}, int64_t{20}, static_cast<int64_t>(vocab)})
          for (float top_p : {0.8f, 1.0f, 0.3f})
            for (float min_p : {0.0f, 0.05f}) {
              SamplingParams params = sampling(temperature, top_k, top_p, min_p, seed);
              if (seed % 3 == 0) params.repetition_penalty = 1.3f;
              if (seed % 4 == 1) params.presence_penalty = 0.5f, params.frequency_penalty = 0.25f;
              expect_same_draws(params, vocab, ties, seed++, 3);
              if (HasFatalFailure()) return;
            }
}

TEST(SamplerEquivalence, QwenVocabulary) {
  constexpr size_t kVocab = 151936;
  struct Mix {
    int64_t top_k;
    float top_p, min_p, repetition_penalty;
  };
  // Qwen3-VL's generation_config (top_k 20, top_p 0.8), top-p alone (the whole vocabulary ordered), top-k only,
  // min-p alone, and everything off.
  const Mix mixes[] = {{20, 0.8f, 0.0f, 1.0f}, {0, 0.8f, 0.0f, 1.05f}, {0, 0.95f, 0.02f, 1.0f},
                       {20, 1.0f, 0.0f, 1.0f}, {1, 0.8f, 0.0f, 1.0f},  {0, 1.0f, 0.1f, 1.0f},
                       {0, 1.0f, 0.0f, 1.0f},  {static_cast<int64_t>(kVocab), 0.8f, 0.0f, 1.0f}};
  uint32_t seed = 1000;
  for (const Mix& mix : mixes)
    for (bool ties : {false, true}) {
      SamplingParams params = sampling(ties ? 1.0f : 0.7f, mix.top_k, mix.top_p, mix.min_p, seed);
      params.repetition_penalty = mix.repetition_penalty;
      expect_same_draws(params, kVocab, ties, seed++, 2);
      if (HasFatalFailure()) return;
    }
}

TEST(SamplerEquivalence, FlatAndSpikyDistributions) {
  // All equal (every token ties: the top-p order is the id order) and one token holding nearly all the mass.
  for (float top_p : {0.8f, 0.3f}) {
    SamplingParams params = sampling(1.0f, 0, top_p, 0.0f, 9);
    std::vector<float> flat(5000, 0.25f), flat_expected = flat;
    Sampler sampler(params);
    ReferenceSampler reference(params);
    EXPECT_EQ(sampler.next(flat, {}, {}), reference.next(flat_expected, {}, {}));
    EXPECT_TRUE(same_bits(flat, flat_expected));
    std::vector<float> spiky(5000, -30.0f);
    spiky[1234] = 40.0f;
    std::vector<float> spiky_expected = spiky;
    EXPECT_EQ(sampler.next(spiky, {}, {}), 1234);
    EXPECT_EQ(reference.next(spiky_expected, {}, {}), 1234);
    EXPECT_TRUE(same_bits(spiky, spiky_expected));
  }
}

}  // namespace
}  // namespace qwen3vl
