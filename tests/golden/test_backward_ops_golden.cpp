// The backward ops (ops/backward.h) and the MoE block's backward (model/moe_train.h) against PyTorch autograd in
// fp32 through the transformers and PEFT modules themselves (scripts/reference/dump_backward_op_goldens.py:
// Qwen3VLTextRMSNorm, nn.LayerNorm, the vision MLP's gelu_pytorch_tanh and the merger's nn.GELU, the text MLP's
// silu * up, apply_rotary_pos_emb / apply_rotary_pos_emb_vision with their rotary embeddings' cos/sin,
// eager_attention_forward with repeat_kv and a block-diagonal causal mask, F.cross_entropy, nn.Embedding, PEFT LoRA
// and DoRA Linear, Qwen3VLMoeTextSparseMoeBlock). Each case feeds the dumped inputs and output gradient dy to the op
// and compares every gradient; the scalar reference and the dispatched op (two threads) both run.
//
// Bound: relative L2 <= kRelL2 and max |diff| <= kRelL2 * max(1, max |torch|). Both sides are float32 with
// different summation orders; measured worst 1.9e-7 relative L2 (attention_text dq, dispatched; the reference's worst
// 1.8e-7, moe down_proj), recorded per gradient as test properties (--gtest_output=xml shows them).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/safetensors.h"
#include "model/moe_train.h"
#include "model/mrope.h"
#include "model/vision_positions.h"
#include "ops/backward.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

constexpr double kRelL2 = 1e-6;

class Goldens {
 public:
  Goldens() : file_(testing::fixtures_dir() + "/train/ops/ops.safetensors") {
    std::ifstream in(testing::fixtures_dir() + "/train/ops/ops.json");
    cases_ = nlohmann::json::parse(in);
  }
  std::vector<float> tensor(const std::string& name) const {
    const auto it = file_.tensors().find(name);
    if (it == file_.tensors().end()) ADD_FAILURE() << "no golden tensor " << name;
    return it == file_.tensors().end() ? std::vector<float>{} : tensor_floats(it->second);
  }
  const nlohmann::json& params(const std::string& name) const { return cases_.at(name); }

 private:
  SafetensorsFile file_;
  nlohmann::json cases_;
};

const Goldens& goldens() {
  static const Goldens instance;
  return instance;
}

void expect_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& expected) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  double diff2 = 0.0, ref2 = 0.0, max_diff = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(got[i]) - expected[i]);
    diff2 += diff * diff;
    ref2 += static_cast<double>(expected[i]) * expected[i];
    max_diff = std::max(max_diff, std::isnan(diff) ? INFINITY : diff);
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(expected[i])));
  }
  ASSERT_GT(ref2, 0.0) << what << ": an all-zero golden checks nothing";
  const double rel = std::sqrt(diff2 / ref2);
  EXPECT_LE(rel, kRelL2) << what;
  EXPECT_LE(max_diff, kRelL2 * std::max(1.0, max_ref)) << what;
  std::ostringstream measured;
  measured << std::setprecision(3) << rel;
  ::testing::Test::RecordProperty(what, measured.str());
}

// The golden gradient of `input` in case `name` against `got`.
void expect_grad(const std::string& name, const std::string& input, const std::vector<float>& got) {
  expect_close(name + ".grad." + input, got, goldens().tensor(name + ".grad." + input));
}

ThreadPool& two_threads() {
  static ThreadPool pool(2);
  return pool;
}

// GetParam(): true runs ops::* on two threads, false ops::reference::*.
class BackwardOpsGolden : public ::testing::TestWithParam<bool> {
 protected:
  bool dispatched() const { return GetParam(); }
  ops::Context ctx() const { return {&two_threads(), nullptr}; }
};

TEST_P(BackwardOpsGolden, NormsMatchTorch) {
  for (const std::string name : {"rms_norm_hidden", "rms_norm_qk"}) {
    const std::vector<float> x = goldens().tensor(name + ".x"), w = goldens().tensor(name + ".weight");
    const std::vector<float> dy = goldens().tensor(name + ".dy");
    const float eps = goldens().params(name)["eps"].get<float>();
    const int64_t dim = static_cast<int64_t>(w.size()), rows = static_cast<int64_t>(x.size()) / dim;
    std::vector<float> dx(x.size()), dw(w.size(), 0.f);
    const WeightVector weight{DType::F32, w.data(), dim};
    if (dispatched()) ops::rms_norm_backward(ctx(), x.data(), rows, dim, weight, eps, dy.data(), dx.data(), dw.data());
    else ops::reference::rms_norm_backward(x.data(), rows, dim, weight, eps, dy.data(), dx.data(), dw.data());
    expect_grad(name, "x", dx);
    expect_grad(name, "weight", dw);
  }
  const std::string name = "layer_norm";
  const std::vector<float> x = goldens().tensor(name + ".x"), w = goldens().tensor(name + ".weight");
  const std::vector<float> b = goldens().tensor(name + ".bias"), dy = goldens().tensor(name + ".dy");
  const float eps = goldens().params(name)["eps"].get<float>();
  const int64_t dim = static_cast<int64_t>(w.size()), rows = static_cast<int64_t>(x.size()) / dim;
  std::vector<float> dx(x.size()), dw(w.size(), 0.f), db(b.size(), 0.f);
  const WeightVector weight{DType::F32, w.data(), dim}, bias{DType::F32, b.data(), dim};
  if (dispatched())
    ops::layer_norm_backward(ctx(), x.data(), rows, dim, weight, bias, eps, dy.data(), dx.data(), dw.data(), db.data());
  else
    ops::reference::layer_norm_backward(x.data(), rows, dim, weight, bias, eps, dy.data(), dx.data(), dw.data(),
                                        db.data());
  expect_grad(name, "x", dx);
  expect_grad(name, "weight", dw);
  expect_grad(name, "bias", db);
}

TEST_P(BackwardOpsGolden, ActivationsMatchTorch) {
  for (const std::string name : {"gelu_tanh", "gelu_erf"}) {
    const std::vector<float> x = goldens().tensor(name + ".x"), dy = goldens().tensor(name + ".dy");
    std::vector<float> dx(x.size());
    const bool tanh_form = name == "gelu_tanh";
    if (dispatched())
      (tanh_form ? ops::gelu_tanh_backward : ops::gelu_erf_backward)(ctx(), x.data(), dy.data(), x.size(), dx.data());
    else
      (tanh_form ? ops::reference::gelu_tanh_backward : ops::reference::gelu_erf_backward)(x.data(), dy.data(),
                                                                                           x.size(), dx.data());
    expect_grad(name, "x", dx);
  }
  const std::vector<float> gate = goldens().tensor("silu_mul.gate"), up = goldens().tensor("silu_mul.up");
  const std::vector<float> dy = goldens().tensor("silu_mul.dy");
  std::vector<float> dgate(gate.size()), dup(up.size());
  if (dispatched()) ops::silu_mul_backward(ctx(), gate.data(), up.data(), dy.data(), gate.size(), dgate.data(), dup.data());
  else ops::reference::silu_mul_backward(gate.data(), up.data(), dy.data(), gate.size(), dgate.data(), dup.data());
  expect_grad("silu_mul", "gate", dgate);
  expect_grad("silu_mul", "up", dup);
}

// The engine's own cos/sin (TextRotary, VisionRotary) must equal the rotary embeddings' tables; the backward then
// runs on them, q's and k's gradients from the two halves of dy.
TEST_P(BackwardOpsGolden, RotaryMatchesTorch) {
  const int64_t head_dim = 16;
  for (const std::string name : {"rotary_text", "rotary_vision"}) {
    const std::vector<float> q = goldens().tensor(name + ".q"), dy = goldens().tensor(name + ".dy");
    const int64_t rows = static_cast<int64_t>(goldens().tensor(name + ".cos").size()) / head_dim;
    std::vector<float> cos(rows * head_dim), sin(rows * head_dim);
    const nlohmann::json& params = goldens().params(name);
    if (name == "rotary_text") {
      TextConfig config;
      config.head_dim = head_dim;
      config.rope_theta = 5000000.0;
      config.mrope_section = {2, 3, 3};
      MropePositions positions;
      positions.t = params["positions"][0].get<std::vector<int64_t>>();
      positions.h = params["positions"][1].get<std::vector<int64_t>>();
      positions.w = params["positions"][2].get<std::vector<int64_t>>();
      TextRotary(config).compute(positions, cos.data(), sin.data(), Precision::F32);
    } else {
      std::vector<PatchPosition> patches;
      for (const auto& p : params["patches"]) patches.push_back({p[0].get<int64_t>(), p[1].get<int64_t>()});
      VisionRotary(head_dim).compute(patches.data(), rows, cos.data(), sin.data());
    }
    expect_close(name + ".cos", cos, goldens().tensor(name + ".cos"));
    expect_close(name + ".sin", sin, goldens().tensor(name + ".sin"));
    std::vector<float> dq(dy.begin(), dy.begin() + static_cast<std::ptrdiff_t>(q.size()));
    std::vector<float> dk(dy.begin() + static_cast<std::ptrdiff_t>(q.size()), dy.end());
    for (std::vector<float>* d : {&dq, &dk}) {
      const int64_t heads = static_cast<int64_t>(d->size()) / (rows * head_dim);
      if (dispatched()) ops::apply_rotary_backward(ctx(), d->data(), rows, heads, head_dim, cos.data(), sin.data());
      else ops::reference::apply_rotary_backward(d->data(), rows, heads, head_dim, cos.data(), sin.data());
    }
    expect_grad(name, "q", dq);
    expect_grad(name, "k", dk);
  }
}

TEST_P(BackwardOpsGolden, AttentionMatchesTorch) {
  for (const std::string name : {"attention_text", "attention_vision"}) {
    const nlohmann::json& params = goldens().params(name);
    const std::vector<int64_t> cu = params["cu_seqlens"].get<std::vector<int64_t>>();
    const ops::AttentionShape shape{params["num_heads"].get<int64_t>(), params["num_kv_heads"].get<int64_t>(),
                                    params["head_dim"].get<int64_t>()};
    const bool causal = params["causal"].get<bool>();
    const float scale = params["scale"].get<float>();
    const std::vector<float> q = goldens().tensor(name + ".q"), k = goldens().tensor(name + ".k");
    const std::vector<float> v = goldens().tensor(name + ".v"), dout = goldens().tensor(name + ".dy");
    std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
    const int64_t n = cu.back(), segments = static_cast<int64_t>(cu.size()) - 1;
    if (dispatched())
      ops::attention_backward(ctx(), q.data(), k.data(), v.data(), n, cu.data(), segments, causal, shape, scale,
                              dout.data(), dq.data(), dk.data(), dv.data());
    else
      ops::reference::attention_backward(q.data(), k.data(), v.data(), n, cu.data(), segments, causal, shape, scale,
                                         dout.data(), dq.data(), dk.data(), dv.data());
    expect_grad(name, "q", dq);
    expect_grad(name, "k", dk);
    expect_grad(name, "v", dv);
  }
}

TEST_P(BackwardOpsGolden, CrossEntropyAndEmbeddingMatchTorch) {
  const nlohmann::json& params = goldens().params("cross_entropy");
  const std::vector<int32_t> targets = params["targets"].get<std::vector<int32_t>>();
  const std::vector<float> logits = goldens().tensor("cross_entropy.logits");
  const int64_t rows = static_cast<int64_t>(targets.size()), vocab = static_cast<int64_t>(logits.size()) / rows;
  const float grad_scale = params["grad_scale"].get<float>();
  std::vector<float> dlogits(logits.size());
  int64_t count = 0;
  const double loss =
      dispatched()
          ? ops::cross_entropy(ctx(), logits.data(), rows, vocab, targets.data(), grad_scale, dlogits.data(), &count)
          : ops::reference::cross_entropy(logits.data(), rows, vocab, targets.data(), grad_scale, dlogits.data(),
                                          &count);
  const double torch_loss = params["loss"].get<double>();
  EXPECT_NEAR(loss, torch_loss, 1e-6 * torch_loss);
  EXPECT_EQ(count, 4);
  expect_grad("cross_entropy", "logits", dlogits);

  const nlohmann::json& embedding = goldens().params("embedding");
  const std::vector<int32_t> ids = embedding["ids"].get<std::vector<int32_t>>();
  const std::vector<float> dy = goldens().tensor("embedding.dy");
  std::vector<float> dtable(goldens().tensor("embedding.weight").size(), 0.f);
  const int64_t dim = static_cast<int64_t>(dy.size() / ids.size());
  ops::embedding_backward(ids.data(), static_cast<int64_t>(ids.size()), dy.data(), dim, dtable.data(),
                          embedding["padding_idx"].get<int64_t>());
  expect_grad("embedding", "weight", dtable);
}

// PEFT's LoRA / DoRA Linear: the base weight and bias trainable too, every term's factors and magnitudes.
TEST_P(BackwardOpsGolden, LinearWithAdaptersMatchesPeft) {
  for (const std::string name : {"linear_lora", "linear_two_lora", "linear_lora_dora", "linear_dora"}) {
    SCOPED_TRACE(name);
    const nlohmann::json& params = goldens().params(name);
    const auto tensor = [&](const std::string& t) { return goldens().tensor(name + "." + t); };
    const std::vector<float> x = tensor("x"), w = tensor("weight"), bias = tensor("bias"), dy = tensor("dy");
    const int64_t out = static_cast<int64_t>(bias.size()), in = static_cast<int64_t>(w.size()) / out;
    const int64_t n = static_cast<int64_t>(x.size()) / in;
    const size_t count = params["dora"].size();
    std::vector<std::vector<float>> a(count), b(count), magnitude(count), norm(count), scale(count);
    std::vector<std::vector<float>> da(count), db(count), dm(count);
    std::vector<float*> da_ptr, db_ptr, dm_ptr;
    std::vector<LoraTerm> terms(count);
    for (size_t t = 0; t < count; ++t) {
      const std::string s = std::to_string(t);
      a[t] = tensor("lora_A" + s);
      b[t] = tensor("lora_B" + s);
      const int64_t r = static_cast<int64_t>(a[t].size()) / in;
      terms[t].lora_A = WeightMatrix{DType::F32, a[t].data(), r, in};
      terms[t].lora_B = WeightMatrix{DType::F32, b[t].data(), out, r};
      terms[t].scaling = params["scalings"][t].get<float>();
      da[t].assign(a[t].size(), 0.f);
      db[t].assign(b[t].size(), 0.f);
      if (params["dora"][t].get<bool>()) {
        magnitude[t] = tensor("magnitude" + s);
        norm[t] = tensor("dora_norm" + s);
        for (int64_t j = 0; j < out; ++j) scale[t].push_back(magnitude[t][j] / norm[t][j]);  // PEFT's mag_norm_scale
        terms[t].dora_scale = scale[t].data();
        terms[t].dora_norm = norm[t].data();
        dm[t].assign(out, 0.f);
      }
      da_ptr.push_back(da[t].data());
      db_ptr.push_back(db[t].data());
      dm_ptr.push_back(dm[t].empty() ? nullptr : dm[t].data());
    }
    const WeightMatrix weight{DType::F32, w.data(), out, in, WeightLayout::OutIn,
                              LoraTerms{terms.data(), static_cast<int>(count)}};
    std::vector<float> dx(x.size()), dw(w.size(), 0.f), dbias(bias.size(), 0.f);
    ops::LinearGrads grads;
    grads.weight = dw.data();
    grads.bias = dbias.data();
    grads.lora_A = da_ptr.data();
    grads.lora_B = db_ptr.data();
    grads.magnitude = dm_ptr.data();
    if (dispatched()) ops::linear_backward(ctx(), x.data(), n, weight, dy.data(), dx.data(), false, grads);
    else ops::reference::linear_backward(x.data(), n, weight, dy.data(), dx.data(), false, grads);
    expect_grad(name, "x", dx);
    expect_grad(name, "weight", dw);
    expect_grad(name, "bias", dbias);
    for (size_t t = 0; t < count; ++t) {
      const std::string s = std::to_string(t);
      expect_grad(name, "lora_A" + s, da[t]);
      expect_grad(name, "lora_B" + s, db[t]);
      if (!dm[t].empty()) expect_grad(name, "magnitude" + s, dm[t]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(, BackwardOpsGolden, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Dispatched" : "Reference";
                         });

// Qwen3VLMoeTextSparseMoeBlock (grouped_mm experts, transformers' in-memory [E, 2 Im, H] / [E, H, Im] layout): the
// same picks, then every gradient.
TEST(BackwardOpsGoldenMoe, RouterAndExpertsMatchTorch) {
  const nlohmann::json& params = goldens().params("moe");
  TextConfig config;
  config.hidden_size = params["hidden_size"].get<int64_t>();
  config.num_experts = params["num_experts"].get<int64_t>();
  config.num_experts_per_tok = params["num_experts_per_tok"].get<int64_t>();
  config.moe_intermediate_size = params["moe_intermediate_size"].get<int64_t>();
  const int64_t hidden = config.hidden_size, experts = config.num_experts, im = config.moe_intermediate_size;
  const std::vector<float> x = goldens().tensor("moe.x"), router = goldens().tensor("moe.router");
  const std::vector<float> gate_up = goldens().tensor("moe.gate_up_proj"), down = goldens().tensor("moe.down_proj");
  const std::vector<float> dy = goldens().tensor("moe.dy");
  const int64_t n = static_cast<int64_t>(x.size()) / hidden;
  MoeLayerWeights weights;
  weights.gate = WeightMatrix{DType::F32, router.data(), experts, hidden};
  std::vector<float> d_router(router.size(), 0.f), d_gate_up(gate_up.size(), 0.f), d_down(down.size(), 0.f);
  MoeLayerGrads grads;
  grads.gate.weight = d_router.data();
  for (int64_t e = 0; e < experts; ++e) {
    weights.gate_up_proj.push_back(WeightMatrix{DType::F32, gate_up.data() + e * 2 * im * hidden, 2 * im, hidden});
    weights.down_proj.push_back(WeightMatrix{DType::F32, down.data() + e * hidden * im, hidden, im});
    grads.gate_up_proj.emplace_back();
    grads.gate_up_proj.back().weight = d_gate_up.data() + e * 2 * im * hidden;
    grads.down_proj.emplace_back();
    grads.down_proj.back().weight = d_down.data() + e * hidden * im;
  }
  const ops::Context ctx{&two_threads(), nullptr};
  MoeTrainActivations acts;
  std::vector<float> out(x.size()), dx(x.size());
  moe_train_forward(weights, config, x.data(), n, out.data(), acts, ctx);
  std::vector<int32_t> picks;
  for (const auto& row : params["top_index"])
    for (const auto& e : row) picks.push_back(e.get<int32_t>());
  ASSERT_EQ(acts.top_index, picks);
  moe_train_backward(weights, config, x.data(), n, acts, dy.data(), dx.data(), grads, ctx);
  expect_grad("moe", "x", dx);
  expect_grad("moe", "router", d_router);
  expect_grad("moe", "gate_up_proj", d_gate_up);
  expect_grad("moe", "down_proj", d_down);
}

}  // namespace
}  // namespace qwen3vl
