// The MoE building blocks: the input-major matmul layout, torch.topk's tie order, and the evidence that the sparse
// block only ever reads the experts the router picked (usage counter and NaN-poisoned unselected experts).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>

#include "core/dtype.h"
#include "core/error.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/moe.h"
#include "model/text_decoder.h"
#include "model/text_weights.h"
#include "ops/ops.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

std::vector<float> random_floats(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> out(count);
  for (float& v : out) v = dist(rng);
  return out;
}

TEST(MoeOps, InputMajorLinearMatchesOutputMajor) {
  const int64_t n = 5, in = 37, out = 23;
  const auto x = random_floats(static_cast<size_t>(n * in), 1);
  const auto w_out_in = random_floats(static_cast<size_t>(out * in), 2);  // [out, in]
  std::vector<float> w_in_out(w_out_in.size());                           // [in, out]
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) w_in_out[i * out + o] = w_out_in[o * in + i];
  const WeightMatrix a{DType::F32, w_out_in.data(), out, in, WeightLayout::OutIn};
  const WeightMatrix b{DType::F32, w_in_out.data(), out, in, WeightLayout::InOut};
  std::vector<float> ya(static_cast<size_t>(n * out)), yb(ya.size());
  ops::linear(x.data(), n, a, ya.data(), Precision::F32);
  ops::linear(x.data(), n, b, yb.data(), Precision::F32);
  for (size_t i = 0; i < ya.size(); ++i) EXPECT_NEAR(ya[i], yb[i], 2e-5f) << i;

  // bf16 weights and rounding: only the float summation order differs, so at most one bf16 rounding flips (1 ulp)
  std::vector<uint16_t> a16(w_out_in.size()), b16(w_in_out.size());
  for (size_t i = 0; i < a16.size(); ++i) a16[i] = f32_to_bf16(w_out_in[i]);
  for (size_t i = 0; i < b16.size(); ++i) b16[i] = f32_to_bf16(w_in_out[i]);
  const WeightMatrix a2{DType::BF16, a16.data(), out, in, WeightLayout::OutIn};
  const WeightMatrix b2{DType::BF16, b16.data(), out, in, WeightLayout::InOut};
  ops::linear(x.data(), n, a2, ya.data(), Precision::BF16);
  ops::linear(x.data(), n, b2, yb.data(), Precision::BF16);
  for (size_t i = 0; i < ya.size(); ++i) {
    EXPECT_EQ(ya[i], round_to_bf16(ya[i]));
    EXPECT_LE(std::fabs(ya[i] - yb[i]), std::fabs(ya[i]) / 128.f + 1e-6f) << i;
  }
}

// Expected orders printed by torch 2.15 on CPU: torch.topk(torch.tensor([...]), k).indices.
TEST(MoeRouter, TopkOrdersTiesAsTorch) {
  auto topk = [](const std::vector<float>& v, int64_t k) {
    std::vector<int32_t> out(static_cast<size_t>(k));
    topk_like_torch(v.data(), static_cast<int64_t>(v.size()), k, out.data());
    return out;
  };
  const std::vector<float> a{0.1f, 0.3f, 0.3f, 0.2f, 0.3f, 0.0f, 0.1f, 0.3f};
  EXPECT_EQ(topk(a, 3), (std::vector<int32_t>{4, 7, 2}));
  EXPECT_EQ(topk(a, 2), (std::vector<int32_t>{4, 7}));
  EXPECT_EQ(topk(std::vector<float>(8, 0.125f), 3), (std::vector<int32_t>{6, 5, 4}));
  std::vector<float> wide(128), flat(64);
  for (int i = 0; i < 128; ++i) wide[i] = static_cast<float>(i % 5) / 8.f;
  for (int i = 0; i < 64; ++i) flat[i] = static_cast<float>(i % 3);
  EXPECT_EQ(topk(wide, 8), (std::vector<int32_t>{29, 39, 89, 34, 94, 24, 19, 104}));  // nth_element path
  EXPECT_EQ(topk(flat, 1), (std::vector<int32_t>{2}));                                 // partial_sort path
  EXPECT_EQ(topk({0.5f, 0.1f, 0.9f, 0.7f}, 2), (std::vector<int32_t>{2, 3}));
}

struct MoeCheckpoint {
  ModelConfig config;
  TensorStore store;
  TextWeights weights;
};

std::unique_ptr<MoeCheckpoint> open_moe(const std::string& name) {
  auto c = std::make_unique<MoeCheckpoint>();
  const std::string dir = testing::model_fixture(name);
  c->config = load_model_config(dir + "/config.json");
  c->store = TensorStore::open_dir(dir);
  c->weights = bind_text_weights(c->store, c->config);
  return c;
}

TEST(MoeWeights, BindsBothOnDiskLayoutsWithoutCopying) {
  const auto released = open_moe("tiny-moe-fp32");      // [E, H, 2Im] / [E, Im, H]
  const auto saved_by_hf5 = open_moe("tiny-moe-bf16");  // [E, 2Im, H] / [E, H, Im]
  for (const auto* c : {released.get(), saved_by_hf5.get()}) {
    const TextConfig& t = c->config.text_config;
    for (const TextLayerWeights& layer : c->weights.layers) {
      ASSERT_EQ(layer.moe.num_experts(), t.num_experts);
      EXPECT_EQ(layer.moe.gate_up_proj[1].rows, 2 * t.moe_intermediate_size);
      EXPECT_EQ(layer.moe.gate_up_proj[1].cols, t.hidden_size);
      EXPECT_EQ(layer.moe.down_proj[1].rows, t.hidden_size);
      EXPECT_EQ(layer.moe.down_proj[1].cols, t.moe_intermediate_size);
    }
    // expert e is a view at offset e * (H * 2Im) elements into the mapped fused tensor
    const TensorView& fused = c->store.get(c->weights.prefix + "layers.0.mlp.experts.gate_up_proj");
    const auto& slices = c->weights.layers[0].moe.gate_up_proj;
    EXPECT_EQ(slices[0].data, static_cast<const void*>(fused.data));
    EXPECT_EQ(static_cast<const uint8_t*>(slices[3].data) - fused.data,
              3 * t.hidden_size * 2 * t.moe_intermediate_size * static_cast<int64_t>(dtype_size(fused.dtype)));
  }
  EXPECT_EQ(released->weights.layers[0].moe.gate_up_proj[0].layout, WeightLayout::InOut);
  EXPECT_EQ(released->weights.layers[0].moe.down_proj[0].layout, WeightLayout::InOut);
  EXPECT_EQ(saved_by_hf5->weights.layers[0].moe.gate_up_proj[0].layout, WeightLayout::OutIn);
  EXPECT_EQ(saved_by_hf5->weights.layers[0].moe.down_proj[0].layout, WeightLayout::OutIn);
}

TEST(MoeWeights, WrongExpertShapeNamesTheTensor) {
  testing::TempDir dir;
  const std::string copy = dir.file("model");
  testing::copy_dir(testing::model_fixture("tiny-moe-fp32"), copy);
  const ModelConfig config = load_model_config(copy + "/config.json");
  ModelConfig bad = config;
  bad.text_config.moe_intermediate_size = 24;
  const TensorStore store = TensorStore::open_dir(copy);
  try {
    bind_text_weights(store, bad);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("model.language_model.layers.0.mlp.experts.gate_up_proj"), std::string::npos) << message;
    EXPECT_NE(message.find("[8, 64, 80]"), std::string::npos) << message;
  }
}

// Decoding one token reads exactly top-k experts per layer, once each, and expert_bytes(e) of each of them: the
// bytes scale with the active parameters (k of E experts), not the total.
TEST(MoeSparsity, DecodeTouchesOnlyTopKExpertsPerLayer) {
  const auto c = open_moe("tiny-moe-fp32");
  const TextConfig& t = c->config.text_config;
  TextDecoder decoder(c->config, c->weights);
  const std::vector<int32_t> prompt{17, 301, 999, 42, 7, 1500, 63, 250};
  const int64_t n = static_cast<int64_t>(prompt.size()), steps = 6;
  KVCache cache = decoder.make_cache(n + steps);
  DecoderWorkspace work;
  std::vector<float> embeds(static_cast<size_t>(n * t.hidden_size)), logits;
  decoder.embed(prompt.data(), n, embeds.data());
  decoder.forward(embeds.data(), n, text_positions(0, n), cache, work, LogitsRows::Last, logits);

  const ExpertUsage& usage = work.moe.usage;
  const int64_t expert_bytes = c->weights.layers[0].moe.expert_bytes(0);
  const int64_t total_expert_bytes = t.num_hidden_layers * t.num_experts * expert_bytes;
  // prefill: grouped by expert, so each expert that got rows ran exactly one matmul pair per layer
  for (int64_t l = 0; l < t.num_hidden_layers; ++l) {
    int64_t rows = 0;
    for (int64_t e = 0; e < t.num_experts; ++e) {
      EXPECT_LE(usage.calls[l][e], 1);
      EXPECT_EQ(usage.calls[l][e] > 0, usage.rows[l][e] > 0);
      rows += usage.rows[l][e];
    }
    EXPECT_EQ(rows, n * t.num_experts_per_tok) << "layer " << l;
  }
  std::printf("  prefill of %lld tokens: %lld expert calls, %lld expert bytes read (all experts: %lld)\n",
              static_cast<long long>(n), static_cast<long long>(usage.expert_calls),
              static_cast<long long>(usage.weight_bytes), static_cast<long long>(total_expert_bytes));

  for (int64_t step = 0; step < steps; ++step) {
    int32_t token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    work.moe.usage.reset();
    decoder.embed(&token, 1, embeds.data());
    decoder.forward(embeds.data(), 1, text_positions(cache.length(), 1), cache, work, LogitsRows::Last, logits);
    for (int64_t l = 0; l < t.num_hidden_layers; ++l) {
      EXPECT_EQ(usage.distinct_experts(l), t.num_experts_per_tok) << "step " << step << " layer " << l;
      for (int64_t e = 0; e < t.num_experts; ++e) EXPECT_EQ(usage.rows[l][e], usage.calls[l][e]);
    }
    EXPECT_EQ(usage.expert_calls, t.num_hidden_layers * t.num_experts_per_tok);
    EXPECT_EQ(usage.weight_bytes, t.num_hidden_layers * t.num_experts_per_tok * expert_bytes);
    if (step == 0)
      std::printf("  decode step: %lld expert bytes read of %lld (%.0f%%, k/E = %lld/%lld)\n",
                  static_cast<long long>(usage.weight_bytes), static_cast<long long>(total_expert_bytes),
                  100.0 * static_cast<double>(usage.weight_bytes) / static_cast<double>(total_expert_bytes),
                  static_cast<long long>(t.num_experts_per_tok), static_cast<long long>(t.num_experts));
  }
}

// The strongest form of the claim: a second decoder runs on a writable copy of the expert weights in which, before
// every decode step, each expert the router does NOT pick at that step is overwritten with NaN. A dense or
// accidental read would turn the logits into NaN; the logits stay bit-identical to the clean run instead.
TEST(MoeSparsity, UnselectedExpertsAreNeverRead) {
  const auto c = open_moe("tiny-moe-fp32");
  const TextConfig& t = c->config.text_config;
  ASSERT_EQ(c->weights.dtype, DType::F32);

  // Writable copies of every layer's fused expert tensors, and weights pointing into them.
  TextWeights poisoned = c->weights;
  std::vector<std::vector<float>> gate_up_copy(t.num_hidden_layers), down_copy(t.num_hidden_layers);
  for (int64_t l = 0; l < t.num_hidden_layers; ++l) {
    MoeLayerWeights& m = poisoned.layers[l].moe;
    const size_t gu = static_cast<size_t>(m.gate_up_proj[0].rows * m.gate_up_proj[0].cols);
    const size_t dn = static_cast<size_t>(m.down_proj[0].rows * m.down_proj[0].cols);
    gate_up_copy[l].resize(gu * t.num_experts);
    down_copy[l].resize(dn * t.num_experts);
    for (int64_t e = 0; e < t.num_experts; ++e) {
      std::memcpy(gate_up_copy[l].data() + e * gu, m.gate_up_proj[e].data, gu * sizeof(float));
      std::memcpy(down_copy[l].data() + e * dn, m.down_proj[e].data, dn * sizeof(float));
      m.gate_up_proj[e].data = gate_up_copy[l].data() + e * gu;
      m.down_proj[e].data = down_copy[l].data() + e * dn;
    }
  }
  auto poison_all_but = [&](int64_t l, const std::set<int64_t>& keep) {
    const MoeLayerWeights& clean = c->weights.layers[l].moe;
    for (int64_t e = 0; e < t.num_experts; ++e) {
      const size_t gu = gate_up_copy[l].size() / t.num_experts, dn = down_copy[l].size() / t.num_experts;
      float* g = gate_up_copy[l].data() + e * gu;
      float* d = down_copy[l].data() + e * dn;
      if (keep.count(e)) {
        std::memcpy(g, clean.gate_up_proj[e].data, gu * sizeof(float));
        std::memcpy(d, clean.down_proj[e].data, dn * sizeof(float));
      } else {
        std::fill(g, g + gu, std::numeric_limits<float>::quiet_NaN());
        std::fill(d, d + dn, std::numeric_limits<float>::quiet_NaN());
      }
    }
  };

  TextDecoder clean(c->config, c->weights), dirty(c->config, poisoned);
  const std::vector<int32_t> prompt{5, 77, 1234, 88, 401, 9};
  const int64_t n = static_cast<int64_t>(prompt.size()), steps = 8;
  KVCache clean_cache = clean.make_cache(n + steps), dirty_cache = dirty.make_cache(n + steps + 1);
  DecoderWorkspace clean_work, dirty_work;
  std::vector<float> embeds(static_cast<size_t>(n * t.hidden_size)), clean_logits, dirty_logits;
  clean.embed(prompt.data(), n, embeds.data());
  clean.forward(embeds.data(), n, text_positions(0, n), clean_cache, clean_work, LogitsRows::Last, clean_logits);
  dirty.forward(embeds.data(), n, text_positions(0, n), dirty_cache, dirty_work, LogitsRows::Last, dirty_logits);
  ASSERT_EQ(clean_logits, dirty_logits);

  int64_t poisoned_experts = 0;
  for (int64_t step = 0; step < steps; ++step) {
    const int32_t token =
        static_cast<int32_t>(std::max_element(clean_logits.begin(), clean_logits.end()) - clean_logits.begin());
    clean.embed(&token, 1, embeds.data());
    const MropePositions pos = text_positions(clean_cache.length(), 1);
    clean_work.moe.usage.reset();
    clean.forward(embeds.data(), 1, pos, clean_cache, clean_work, LogitsRows::Last, clean_logits);
    for (int64_t l = 0; l < t.num_hidden_layers; ++l) {
      std::set<int64_t> used;
      for (int64_t e = 0; e < t.num_experts; ++e)
        if (clean_work.moe.usage.calls[l][e] > 0) used.insert(e);
      poison_all_but(l, used);
      poisoned_experts += t.num_experts - static_cast<int64_t>(used.size());
    }
    dirty.forward(embeds.data(), 1, pos, dirty_cache, dirty_work, LogitsRows::Last, dirty_logits);
    ASSERT_EQ(clean_logits, dirty_logits) << "step " << step;
  }
  EXPECT_EQ(poisoned_experts, steps * t.num_hidden_layers * (t.num_experts - t.num_experts_per_tok));

  // Control: with every expert of layer 0 poisoned, the next step's logits do turn NaN.
  poison_all_but(0, {});
  const int32_t token = 11;
  dirty.embed(&token, 1, embeds.data());
  dirty.forward(embeds.data(), 1, text_positions(dirty_cache.length(), 1), dirty_cache, dirty_work,
                LogitsRows::Last, dirty_logits);
  EXPECT_TRUE(std::isnan(dirty_logits[0]));
}

}  // namespace
}  // namespace qwen3vl
