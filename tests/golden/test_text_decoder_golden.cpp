// The text decoder against transformers: per-layer hidden states, final norm, logits and a greedy continuation,
// for every tiny checkpoint under tests/fixtures (goldens written by scripts/reference/dump_text_goldens.py).
//
// Tolerances. fp32 checkpoints run in float like transformers' fp32 eager forward; the only differences are
// summation order and libm ulps: measured max |diff| <= 6e-6 on hidden states and <= 1e-5 on logits
// (|logits| ~ 1). We allow 5e-5 on both, far below what a real bug (a wrong rotary slot, a missing norm,
// a swapped head) produces, which is >= 1e-2. bf16 checkpoints are compared with transformers run in bf16: we
// round to bf16 at the same points, so hidden states agree exactly (measured 0); a different fp32 summation
// order inside a dot product can still flip one bf16 rounding, measured at most 1 ulp (4.9e-4) on the logits.
// We allow 1e-2 on hidden states and 4e-3 on logits, and require the same top-1 token at every position.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/sampler.h"
#include "model/text_decoder.h"
#include "golden_util.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using nlohmann::json;
using testing::max_abs_diff;
using testing::positions_of;
using Checkpoint = testing::TextCheckpoint;

int32_t argmax_row(const float* row, int64_t size) {
  return static_cast<int32_t>(std::max_element(row, row + size) - row);
}

struct Tolerance {
  float hidden;
  float logits;
};

void check_prefill_cases(const Checkpoint& c, const Tolerance& tol) {
  const int64_t hidden = c.config.text_config.hidden_size;
  const int64_t vocab = c.config.text_config.vocab_size;
  for (const json& test_case : c.index["cases"]) {
    const std::string name = test_case["name"];
    SCOPED_TRACE("case " + name);
    const auto ids = test_case["input_ids"].get<std::vector<int32_t>>();
    const int64_t n = static_cast<int64_t>(ids.size());
    std::map<std::string, std::vector<float>> captured;
    const TensorHook hook = [&](const std::string& tensor, const float* data, int64_t rows, int64_t cols) {
      captured[tensor].assign(data, data + rows * cols);
    };
    KVCache cache = c.decoder->make_cache(n);
    DecoderWorkspace work;
    std::vector<float> embeds(static_cast<size_t>(n * hidden)), logits;
    c.decoder->embed(ids.data(), n, embeds.data());
    c.decoder->forward(embeds.data(), n, positions_of(test_case["position_ids"]), cache, work, LogitsRows::All,
                       logits, hook);

    const auto& layer_files = test_case["layer_outputs"];
    for (size_t l = 0; l < layer_files.size(); ++l) {
      const auto expected = c.golden(layer_files[l].get<std::string>());
      const float diff = max_abs_diff(captured["layers." + std::to_string(l)], expected);
      std::printf("  %s %s layer %zu: max |diff| %.3g\n", c.index["checkpoint"].get<std::string>().c_str(),
                  name.c_str(), l, diff);
      EXPECT_LE(diff, tol.hidden) << "layer " << l;
    }
    const auto norm = c.golden(test_case["final_norm"].get<std::string>());
    EXPECT_LE(max_abs_diff(captured["norm"], norm), tol.hidden) << "final norm";

    const auto expected_logits = c.golden(test_case["logits"].get<std::string>());
    const bool all_rows = test_case["logits_rows"] == "all";
    const float* ours = all_rows ? logits.data() : logits.data() + (n - 1) * vocab;
    const float logit_diff = max_abs_diff(ours, expected_logits.data(), expected_logits.size());
    std::printf("  %s %s logits: max |diff| %.3g\n", c.index["checkpoint"].get<std::string>().c_str(),
                name.c_str(), logit_diff);
    EXPECT_LE(logit_diff, tol.logits);
    for (int64_t i = 0; i < n; ++i) {
      const int32_t ours_top = argmax_row(logits.data() + i * vocab, vocab);
      const int32_t theirs_top = test_case.contains("top1")
                                     ? test_case["top1"][i].get<int32_t>()
                                     : argmax_row(expected_logits.data() + i * vocab, vocab);
      EXPECT_EQ(ours_top, theirs_top) << "top-1 at position " << i;
    }
  }
}

void check_greedy(const Checkpoint& c) {
  const json& greedy = c.index["greedy"];
  const auto prompt = greedy["input_ids"].get<std::vector<int32_t>>();
  const auto expected = greedy["output_ids"].get<std::vector<int32_t>>();
  const int64_t max_new = greedy["max_new_tokens"].get<int64_t>();
  const int64_t hidden = c.config.text_config.hidden_size;
  const int64_t n = static_cast<int64_t>(prompt.size());
  KVCache cache = c.decoder->make_cache(n + max_new);
  DecoderWorkspace work;
  std::vector<float> embeds(static_cast<size_t>(n * hidden)), logits;
  c.decoder->embed(prompt.data(), n, embeds.data());
  c.decoder->forward(embeds.data(), n, text_positions(0, n), cache, work, LogitsRows::Last, logits);
  Sampler sampler(SamplingParams{});
  std::vector<int32_t> generated;
  for (int64_t step = 0; step < static_cast<int64_t>(expected.size()); ++step) {
    const int32_t token = sampler.next(logits, prompt, generated);
    generated.push_back(token);
    const int64_t index = cache.length();
    c.decoder->embed(&token, 1, embeds.data());
    if (step + 1 < static_cast<int64_t>(expected.size()))
      c.decoder->forward(embeds.data(), 1, text_positions(index, 1), cache, work, LogitsRows::Last, logits);
  }
  EXPECT_EQ(generated, expected);
}

TEST(TextDecoderGolden, Fp32TiedMatchesTransformers) {
  const auto c = testing::open_text_checkpoint("tiny-fp32-tied");
  EXPECT_TRUE(c->weights.lm_head_tied);
  check_prefill_cases(*c, {5e-5f, 5e-5f});
  check_greedy(*c);
}

TEST(TextDecoderGolden, Fp32UntiedShardedMatchesTransformers) {
  const auto c = testing::open_text_checkpoint("tiny-fp32-untied-sharded");
  EXPECT_FALSE(c->weights.lm_head_tied);
  check_prefill_cases(*c, {5e-5f, 5e-5f});
  check_greedy(*c);
}

TEST(TextDecoderGolden, Bf16UntiedMatchesTransformersBf16) {
  const auto c = testing::open_text_checkpoint("tiny-bf16-untied");
  EXPECT_EQ(c->decoder->precision(), Precision::BF16);
  check_prefill_cases(*c, {1e-2f, 4e-3f});
}

TEST(TextDecoderGolden, Bf16RealVocabularyMatchesTransformersBf16) {
  const auto c = testing::open_text_checkpoint("tiny-realtok-bf16");
  check_prefill_cases(*c, {1e-2f, 4e-3f});
}

}  // namespace
}  // namespace qwen3vl
