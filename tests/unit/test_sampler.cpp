#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/sampler.h"
#include "engine/stop_strings.h"

namespace qwen3vl {
namespace {

TEST(Sampler, GreedyTakesFirstMaximum) {
  Sampler sampler(SamplingParams{});
  std::vector<float> logits = {0.5f, 2.0f, 2.0f, -1.0f};
  EXPECT_EQ(sampler.next(logits, {}, {}), 1);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplingParams params;
  params.repetition_penalty = 2.0f;
  Sampler sampler(params);
  std::vector<float> logits = {3.0f, 2.0f, -1.0f, 1.9f};
  // token 0 seen: 3 -> 1.5; token 2 seen: -1 -> -2; greedy then picks token 1 (2.0) over 3 (1.9).
  EXPECT_EQ(sampler.next(logits, {0, 2}, {}), 1);
  EXPECT_FLOAT_EQ(logits[0], 1.5f);
  EXPECT_FLOAT_EQ(logits[2], -2.0f);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesUseGeneratedTokensOnly) {
  SamplingParams params;
  params.presence_penalty = 1.0f;
  params.frequency_penalty = 0.5f;
  Sampler sampler(params);
  std::vector<float> logits = {5.0f, 4.0f, 0.0f};
  sampler.next(logits, {1, 0, 0}, {0, 0});
  EXPECT_FLOAT_EQ(logits[0], 5.0f - 1.0f - 2 * 0.5f);
  EXPECT_FLOAT_EQ(logits[1], 4.0f);  // only in the prompt
}

// Draws many samples and returns how often each token came up.
std::map<int32_t, int> histogram(SamplingParams params, const std::vector<float>& logits, int draws) {
  Sampler sampler(params);
  std::map<int32_t, int> counts;
  for (int i = 0; i < draws; ++i) {
    std::vector<float> copy = logits;
    ++counts[sampler.next(copy, {}, {})];
  }
  return counts;
}

TEST(Sampler, TopKKeepsOnlyTheKBest) {
  SamplingParams params;
  params.do_sample = true;
  params.top_k = 2;
  params.seed = 7;
  const auto counts = histogram(params, {1.0f, 3.0f, 2.9f, 0.5f}, 2000);
  EXPECT_EQ(counts.count(0), 0u);
  EXPECT_EQ(counts.count(3), 0u);
  EXPECT_GT(counts.at(1), 800);
  EXPECT_GT(counts.at(2), 800);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  SamplingParams params;
  params.do_sample = true;
  params.top_p = 0.7f;
  params.seed = 11;
  // probabilities 0.6, 0.3, 0.1: the nucleus for 0.7 is {0, 1}.
  const auto counts = histogram(params, {std::log(0.6f), std::log(0.3f), std::log(0.1f)}, 3000);
  EXPECT_EQ(counts.count(2), 0u);
  EXPECT_NEAR(counts.at(0) / 3000.0, 0.6 / 0.9, 0.04);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  SamplingParams params;
  params.do_sample = true;
  params.min_p = 0.4f;
  params.seed = 3;
  const auto counts = histogram(params, {std::log(0.5f), std::log(0.3f), std::log(0.2f)}, 2000);
  EXPECT_EQ(counts.count(2), 0u);  // 0.2 < 0.4 * 0.5
  EXPECT_GT(counts.at(1), 500);
}

TEST(Sampler, SameSeedSameDraws) {
  SamplingParams params;
  params.do_sample = true;
  params.seed = 1234;
  const std::vector<float> logits = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
  EXPECT_EQ(histogram(params, logits, 200), histogram(params, logits, 200));
}

TEST(Sampler, TemperatureSharpensTheDistribution) {
  SamplingParams params;
  params.do_sample = true;
  params.temperature = 0.1f;
  params.seed = 5;
  const auto counts = histogram(params, {1.0f, 1.5f}, 1000);
  EXPECT_GT(counts.at(1), 980);  // p = 1 / (1 + e^-5)
}

TEST(StopStrings, HoldsBackPossiblePrefixesAndCutsAtTheStop) {
  StopStringFilter filter({"END", "\n\n"});
  EXPECT_EQ(filter.push("hello E"), "hello ");
  EXPECT_EQ(filter.push("N"), "");
  EXPECT_EQ(filter.push("x"), "ENx");
  EXPECT_EQ(filter.push(" more EN"), " more ");
  EXPECT_EQ(filter.push("D and after"), "");
  EXPECT_TRUE(filter.stopped());
  EXPECT_EQ(filter.flush(), "");
}

TEST(StopStrings, FlushReleasesHeldText) {
  StopStringFilter filter({"</answer>"});
  EXPECT_EQ(filter.push("42</ans"), "42");
  EXPECT_FALSE(filter.stopped());
  EXPECT_EQ(filter.flush(), "</ans");
}

TEST(StopStrings, WithoutStopsEverythingPassesThrough) {
  StopStringFilter filter({});
  EXPECT_EQ(filter.push("abc"), "abc");
  EXPECT_EQ(filter.flush(), "");
}

}  // namespace
}  // namespace qwen3vl
