// The MoE text decoder against transformers' Qwen3VLMoeForConditionalGeneration (default experts implementation,
// "grouped_mm"): layer-0 router logits, probabilities, chosen experts and weights, layer-0 MoE block output, every
// layer's output, final norm, logits and a greedy 32-token continuation, on the tiny MoE checkpoints (goldens
// written by scripts/reference/dump_moe_goldens.py).
//
// Tolerances (the test prints the measured values).
// fp32 (tiny-moe-fp32, 8 experts top-2, experts stored input-major as released): only float summation order and
// libm ulps differ. Measured: router probabilities <= 3.9e-7, router weights <= 4.8e-7, hidden states <= 6.8e-6,
// logits <= 1.3e-5 (|logits| < 9). We allow 1e-6 on probabilities and weights, 5e-5 on hidden states and logits
// (the dense golden bound); the chosen experts must be identical (the smallest gap between the k-th and (k+1)-th
// probability in these goldens is 5.9e-4, far above the probability error).
// bf16 (tiny-moe-bf16, 8 experts top-3, transformers-5 layout): rounded at the same points as transformers, so
// everything agrees exactly until a float summation-order difference flips one bf16 rounding. Measured: router
// probabilities <= 3e-8; router logits, weights, MoE block outputs and layers 0-1 exactly equal; in the "text" case
// one flip upstream of layer 2's MoE block (attention/norm, the dense path's code) moves the layer 2 output by
// 0.0156 and the logits by 0.031, each half of one bf16 ulp at the tensor's largest magnitude. We allow 1e-6 on
// probabilities and one bf16 ulp of the tensor's largest magnitude on everything else, with identical chosen
// experts, the same top-1 token at every position and the same greedy continuation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
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

// The spacing of bf16 values at the largest magnitude in `values`: one rounding flip anywhere in a bf16 forward
// moves an element by at most about this much.
float bf16_ulp_of_max(const std::vector<float>& values) {
  float magnitude = 0.f;
  for (float v : values) magnitude = std::max(magnitude, std::fabs(v));
  return magnitude == 0.f ? 0.f : std::ldexp(1.0f, std::ilogb(magnitude) - 7);
}

// fp32: absolute bounds. bf16 (bf16_ulps > 0): router weights, hidden states and logits within that many bf16 ulps
// of the tensor's largest magnitude.
struct Tolerance {
  float probs;
  float scores;
  float hidden;
  float logits;
  float bf16_ulps = 0.f;
};

void check_cases(const Checkpoint& c, const Tolerance& tol) {
  const int64_t vocab = c.config.text_config.vocab_size;
  const int64_t hidden = c.config.text_config.hidden_size;
  const std::string ckpt = c.index["checkpoint"];
  for (const json& test_case : c.index["cases"]) {
    const std::string name = test_case["name"];
    SCOPED_TRACE("case " + name);
    const auto ids = test_case["input_ids"].get<std::vector<int32_t>>();
    const int64_t n = static_cast<int64_t>(ids.size());
    std::map<std::string, std::vector<float>> got;
    const TensorHook hook = [&](const std::string& tensor, const float* data, int64_t rows, int64_t cols) {
      got[tensor].assign(data, data + rows * cols);
    };
    KVCache cache = c.decoder->make_cache(n);
    DecoderWorkspace work;
    std::vector<float> embeds(static_cast<size_t>(n * hidden)), logits;
    c.decoder->embed(ids.data(), n, embeds.data());
    c.decoder->forward(embeds.data(), n, positions_of(test_case["position_ids"]), cache, work, LogitsRows::All,
                       logits, hook);
    auto golden = [&](const json& file) { return c.golden(file.get<std::string>()); };
    auto report = [&](const std::string& what, float diff) {
      std::printf("  %s %s %s: max |diff| %.3g\n", ckpt.c_str(), name.c_str(), what.c_str(), diff);
      return diff;
    };
    // hidden-like tensors: absolute bound in fp32, ulps in bf16
    auto check = [&](const std::string& what, const std::vector<float>& ours, const std::vector<float>& theirs,
                     float bound) {
      const float diff = report(what, max_abs_diff(ours, theirs));
      EXPECT_LE(diff, tol.bf16_ulps > 0.f ? tol.bf16_ulps * bf16_ulp_of_max(theirs) : bound) << what;
    };

    const json& router = test_case["router"];
    const std::string mlp = "layers." + std::to_string(router["layer"].get<int>()) + ".mlp";
    std::vector<float> indices;
    for (const json& row : router["router_indices"])
      for (const json& e : row) indices.push_back(e.get<float>());
    EXPECT_EQ(got[mlp + ".router_indices"], indices) << "chosen experts";
    check("router_logits", got[mlp + ".router_logits"], golden(router["router_logits"]), tol.hidden);
    EXPECT_LE(report("router_probs", max_abs_diff(got[mlp + ".router_probs"], golden(router["router_probs"]))),
              tol.probs);
    check("router_scores", got[mlp + ".router_scores"], golden(router["router_scores"]), tol.scores);
    check("moe block output", got[mlp], golden(router["mlp_output"]), tol.hidden);

    const auto& layers = test_case["layer_outputs"];
    for (size_t l = 0; l < layers.size(); ++l)
      check("layer " + std::to_string(l), got["layers." + std::to_string(l)], golden(layers[l]), tol.hidden);
    check("final norm", got["norm"], golden(test_case["final_norm"]), tol.hidden);
    ASSERT_EQ(test_case["logits_rows"], "all");
    check("logits", logits, golden(test_case["logits"]), tol.logits);
    for (int64_t i = 0; i < n; ++i) {
      const float* row = logits.data() + i * vocab;
      EXPECT_EQ(std::max_element(row, row + vocab) - row, test_case["top1"][i].get<int64_t>()) << "position " << i;
    }
  }
}

void check_greedy(const Checkpoint& c) {
  const json& greedy = c.index["greedy"];
  const auto prompt = greedy["input_ids"].get<std::vector<int32_t>>();
  const auto expected = greedy["output_ids"].get<std::vector<int32_t>>();
  const int64_t n = static_cast<int64_t>(prompt.size());
  const int64_t steps = static_cast<int64_t>(expected.size());
  KVCache cache = c.decoder->make_cache(n + steps);
  DecoderWorkspace work;
  std::vector<float> embeds(static_cast<size_t>(n * c.config.text_config.hidden_size)), logits;
  c.decoder->embed(prompt.data(), n, embeds.data());
  c.decoder->forward(embeds.data(), n, text_positions(0, n), cache, work, LogitsRows::Last, logits);
  Sampler sampler(SamplingParams{});
  std::vector<int32_t> generated;
  for (int64_t step = 0; step < steps; ++step) {
    const int32_t token = sampler.next(logits, prompt, generated);
    generated.push_back(token);
    if (step + 1 == steps) break;
    c.decoder->embed(&token, 1, embeds.data());
    c.decoder->forward(embeds.data(), 1, text_positions(cache.length(), 1), cache, work, LogitsRows::Last, logits);
  }
  EXPECT_EQ(greedy["max_new_tokens"].get<int64_t>(), 32);
  EXPECT_EQ(generated, expected);
}

TEST(MoeGolden, Fp32ReleasedLayoutMatchesTransformers) {
  const auto c = testing::open_text_checkpoint("tiny-moe-fp32");
  EXPECT_EQ(c->decoder->precision(), Precision::F32);
  EXPECT_EQ(c->weights.layers[0].moe.gate_up_proj[0].layout, WeightLayout::InOut);
  EXPECT_EQ(c->index["num_experts"], 8);
  EXPECT_EQ(c->index["num_experts_per_tok"], 2);
  check_cases(*c, {1e-6f, 1e-6f, 5e-5f, 5e-5f});
  check_greedy(*c);
}

TEST(MoeGolden, Bf16Transformers5LayoutMatchesTransformersBf16) {
  const auto c = testing::open_text_checkpoint("tiny-moe-bf16");
  EXPECT_EQ(c->decoder->precision(), Precision::BF16);
  EXPECT_EQ(c->weights.layers[0].moe.gate_up_proj[0].layout, WeightLayout::OutIn);
  EXPECT_EQ(c->index["num_experts_per_tok"], 3);
  check_cases(*c, {1e-6f, 0.f, 0.f, 0.f, /*bf16_ulps=*/1.f});
  check_greedy(*c);
}

}  // namespace
}  // namespace qwen3vl
