#include "model/moe_train.h"

#include <algorithm>

#include "ops/backward.h"

namespace qwen3vl {

void MoeTrainActivations::clear() {
  for (std::vector<float>* v : {&probs, &scores, &expert_out}) *v = {};
  top_index = {};
  group = {};
  gate_up = {};
  act = {};
}

// Qwen3VLMoeTextTopKRouter + Qwen3VLMoeTextExperts (transformers 5.23) in float32:
//   probs = softmax(x G^T); picks = topk(probs, k); scores = top / sum(top)
//   out[t] = sum over picks r of token t (rank order) of scores[t, r] * down_e(silu(g) * u), [g | u] = x W_gate_up,e
void moe_train_forward(const MoeLayerWeights& weights, const TextConfig& config, const float* x, int64_t n,
                       float* out, MoeTrainActivations& acts, const ops::Context& ctx) {
  const int64_t hidden = config.hidden_size, experts = weights.num_experts();
  const int64_t k = config.num_experts_per_tok, im = config.moe_intermediate_size;
  std::vector<float> logits(static_cast<size_t>(n * experts));
  ops::linear(ctx, x, n, weights.gate, logits.data(), Precision::F32);  // router_logits [n, E]
  acts.probs.resize(logits.size());
  acts.top_index.resize(static_cast<size_t>(n * k));
  acts.scores.resize(static_cast<size_t>(n * k));
  for (int64_t t = 0; t < n; ++t) {
    float* p = acts.probs.data() + t * experts;
    router_softmax(logits.data() + t * experts, experts, p);
    int32_t* picked = acts.top_index.data() + t * k;
    topk_like_torch(p, experts, k, picked);
    float total = 0.f;
    for (int64_t r = 0; r < k; ++r) total += p[picked[r]];
    for (int64_t r = 0; r < k; ++r) acts.scores[t * k + r] = p[picked[r]] / total;
  }

  acts.expert_out.resize(static_cast<size_t>(n * k * hidden));  // pick t * k + r at row t * k + r
  acts.group.assign(static_cast<size_t>(experts), {});
  acts.gate_up.assign(static_cast<size_t>(experts), {});
  acts.act.assign(static_cast<size_t>(experts), {});
  std::vector<float> rows_in, rows_out;
  for (int64_t e = 0; e < experts; ++e) {
    std::vector<int64_t>& group = acts.group[e];
    for (int64_t pick = 0; pick < n * k; ++pick)
      if (acts.top_index[pick] == e) group.push_back(pick);
    const int64_t m = static_cast<int64_t>(group.size());
    if (m == 0) continue;
    rows_in.resize(static_cast<size_t>(m * hidden));
    for (int64_t i = 0; i < m; ++i) std::copy_n(x + (group[i] / k) * hidden, hidden, rows_in.data() + i * hidden);
    std::vector<float>& gate_up = acts.gate_up[e];  // [m, 2*Im]
    std::vector<float>& act = acts.act[e];          // [m, Im]
    gate_up.resize(static_cast<size_t>(m * 2 * im));
    act.resize(static_cast<size_t>(m * im));
    ops::linear(ctx, rows_in.data(), m, weights.gate_up_proj[e], gate_up.data(), Precision::F32);
    for (int64_t i = 0; i < m; ++i) {  // gate, up = gate_up.chunk(2, dim=-1)
      const float* gu = gate_up.data() + i * 2 * im;
      ops::silu_mul(ctx, gu, gu + im, static_cast<size_t>(im), act.data() + i * im, Precision::F32);
    }
    rows_out.resize(static_cast<size_t>(m * hidden));
    ops::linear(ctx, act.data(), m, weights.down_proj[e], rows_out.data(), Precision::F32);
    for (int64_t i = 0; i < m; ++i)
      std::copy_n(rows_out.data() + i * hidden, hidden, acts.expert_out.data() + group[i] * hidden);
  }
  for (int64_t t = 0; t < n; ++t)  // (expert_out * scores).sum over the k picks, in rank order
    for (int64_t d = 0; d < hidden; ++d) {
      float sum = 0.f;
      for (int64_t r = 0; r < k; ++r) sum += acts.expert_out[(t * k + r) * hidden + d] * acts.scores[t * k + r];
      out[t * hidden + d] = sum;
    }
}

namespace {

// d router logits [n, E] from d scores [n, k]: scores = p_top / S (S = sum of the top p) gives
// dp_j = (dscore_j - sum_r scores_r dscore_r) / S on the picked experts (0 elsewhere); then the softmax backward
// dz = p * (dp - sum_e p_e dp_e).
std::vector<float> router_logits_grad(const MoeTrainActivations& acts, const std::vector<float>& dscores, int64_t n,
                                      int64_t experts, int64_t k) {
  std::vector<float> dz(static_cast<size_t>(n * experts), 0.f);
  std::vector<float> dp(static_cast<size_t>(experts));
  for (int64_t t = 0; t < n; ++t) {
    const float* p = acts.probs.data() + t * experts;
    const int32_t* picked = acts.top_index.data() + t * k;
    float total = 0.f, weighted = 0.f;
    for (int64_t r = 0; r < k; ++r) {
      total += p[picked[r]];
      weighted += acts.scores[t * k + r] * dscores[t * k + r];
    }
    std::fill(dp.begin(), dp.end(), 0.f);
    for (int64_t r = 0; r < k; ++r) dp[picked[r]] += (dscores[t * k + r] - weighted) / total;
    float dot = 0.f;
    for (int64_t e = 0; e < experts; ++e) dot += p[e] * dp[e];
    for (int64_t e = 0; e < experts; ++e) dz[t * experts + e] = p[e] * (dp[e] - dot);
  }
  return dz;
}

}  // namespace

void moe_train_backward(const MoeLayerWeights& weights, const TextConfig& config, const float* x, int64_t n,
                        const MoeTrainActivations& acts, const float* dout, float* dx, const MoeLayerGrads& grads,
                        const ops::Context& ctx) {
  const int64_t hidden = config.hidden_size, experts = weights.num_experts();
  const int64_t k = config.num_experts_per_tok, im = config.moe_intermediate_size;
  std::fill(dx, dx + n * hidden, 0.f);

  // d scores[t, r] = <dout[t], expert_out[t, r]>.
  std::vector<float> dscores(static_cast<size_t>(n * k));
  for (int64_t pick = 0; pick < n * k; ++pick) {
    const float* y = acts.expert_out.data() + pick * hidden;
    const float* g = dout + (pick / k) * hidden;
    float dot = 0.f;
    for (int64_t d = 0; d < hidden; ++d) dot += g[d] * y[d];
    dscores[pick] = dot;
  }

  std::vector<float> rows_in, d_rows_out, d_act, d_gate_up, d_rows_in;
  for (int64_t e = 0; e < experts; ++e) {
    const std::vector<int64_t>& group = acts.group[e];
    const int64_t m = static_cast<int64_t>(group.size());
    if (m == 0) continue;
    const ops::LinearGrads none;
    const ops::LinearGrads& g_down = grads.down_proj.empty() ? none : grads.down_proj[e];
    const ops::LinearGrads& g_gate_up = grads.gate_up_proj.empty() ? none : grads.gate_up_proj[e];
    d_rows_out.resize(static_cast<size_t>(m * hidden));  // d expert output = dout[t] * score
    for (int64_t i = 0; i < m; ++i) {
      const float score = acts.scores[group[i]];
      const float* g = dout + (group[i] / k) * hidden;
      for (int64_t d = 0; d < hidden; ++d) d_rows_out[i * hidden + d] = g[d] * score;
    }
    d_act.resize(static_cast<size_t>(m * im));
    ops::linear_backward(ctx, acts.act[e].data(), m, weights.down_proj[e], d_rows_out.data(), d_act.data(), false,
                         g_down);
    d_gate_up.resize(static_cast<size_t>(m * 2 * im));
    for (int64_t i = 0; i < m; ++i) {
      const float* gu = acts.gate_up[e].data() + i * 2 * im;
      float* dgu = d_gate_up.data() + i * 2 * im;
      ops::silu_mul_backward(ctx, gu, gu + im, d_act.data() + i * im, static_cast<size_t>(im), dgu, dgu + im);
    }
    rows_in.resize(static_cast<size_t>(m * hidden));
    for (int64_t i = 0; i < m; ++i) std::copy_n(x + (group[i] / k) * hidden, hidden, rows_in.data() + i * hidden);
    d_rows_in.resize(static_cast<size_t>(m * hidden));
    ops::linear_backward(ctx, rows_in.data(), m, weights.gate_up_proj[e], d_gate_up.data(), d_rows_in.data(), false,
                         g_gate_up);
    for (int64_t i = 0; i < m; ++i) {
      float* dst = dx + (group[i] / k) * hidden;
      for (int64_t d = 0; d < hidden; ++d) dst[d] += d_rows_in[i * hidden + d];
    }
  }

  const std::vector<float> dz = router_logits_grad(acts, dscores, n, experts, k);
  ops::linear_backward(ctx, x, n, weights.gate, dz.data(), dx, true, grads.gate);
}

}  // namespace qwen3vl
