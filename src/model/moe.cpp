#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/error.h"
#include "model/weight_convert.h"
#include "ops/quant.h"

namespace qwen3vl {
namespace {

[[noreturn]] void bad_shape(const TensorView& view, const ModelConfig& config, const std::string& wanted) {
  throw_error(view.file, ": tensor ", view.name, " has shape ", view.shape_string(), " but ", config.path,
              " implies ", wanted);
}

// A fused [E, a, b] tensor as E per-expert matrices mapping `in` -> `out` features. [E, out, in] is the in-memory
// (nn.Linear) layout, tried first as transformers does; [E, in, out] is the input-major layout of released files.
std::vector<WeightMatrix> expert_slices(const TensorView& view, int64_t experts, int64_t in, int64_t out,
                                        const ModelConfig& config) {
  WeightLayout layout;
  if (view.shape == std::vector<int64_t>{experts, out, in}) {
    layout = WeightLayout::OutIn;
  } else if (view.shape == std::vector<int64_t>{experts, in, out}) {
    layout = WeightLayout::InOut;
  } else {
    bad_shape(view, config, "[" + std::to_string(experts) + ", " + std::to_string(in) + ", " + std::to_string(out) +
                                "] (or the transposed [" + std::to_string(experts) + ", " + std::to_string(out) +
                                ", " + std::to_string(in) + "])");
  }
  check_matrix_dtype(view);
  std::vector<WeightMatrix> slices;
  // Quantized experts (written by `qwen3vl quantize`) are always out-major, one blob per expert.
  const size_t slice_bytes = is_quantized(view.dtype) ? quant_matrix_bytes(view.dtype, out, in)
                                                      : static_cast<size_t>(in * out) * dtype_size(view.dtype);
  if (is_quantized(view.dtype) && (layout != WeightLayout::OutIn || view.bytes != slice_bytes * experts))
    throw_error(view.file, ": tensor ", view.name, " holds ", view.bytes, " bytes but ", experts, " ",
                weight_format_name(view.dtype), " matrices [", out, ", ", in, "] need ", slice_bytes * experts);
  for (int64_t e = 0; e < experts; ++e)
    slices.push_back(WeightMatrix{view.dtype, view.data + e * slice_bytes, out, in, layout});
  return slices;
}

size_t matrix_bytes(const WeightMatrix& w) {
  return is_quantized(w.dtype) ? quant_matrix_bytes(w.dtype, w.rows, w.cols)
                               : static_cast<size_t>(w.rows * w.cols) * dtype_size(w.dtype);
}

}  // namespace

void router_softmax(const float* logits, int64_t count, float* probs) {
  float max_value = -INFINITY;
  for (int64_t i = 0; i < count; ++i) max_value = std::max(max_value, logits[i]);
  float sum = 0.f;
  for (int64_t i = 0; i < count; ++i) {
    probs[i] = std::exp(logits[i] - max_value);
    sum += probs[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < count; ++i) probs[i] *= inv;
}

int64_t MoeLayerWeights::expert_bytes(int64_t e) const {
  return static_cast<int64_t>(matrix_bytes(gate_up_proj[e]) + matrix_bytes(down_proj[e]));
}

MoeLayerWeights bind_moe_layer(const TensorStore& store, const std::string& prefix, const ModelConfig& config) {
  const TextConfig& c = config.text_config;
  if (c.num_experts_per_tok > c.num_experts)
    throw_error(config.path, ": text_config.num_experts_per_tok (", c.num_experts_per_tok,
                ") exceeds the number of experts (", c.num_experts, ")");
  MoeLayerWeights w;
  const TensorView& gate = store.get(prefix + "mlp.gate.weight");
  if (gate.shape != std::vector<int64_t>{c.num_experts, c.hidden_size})
    bad_shape(gate, config, "[" + std::to_string(c.num_experts) + ", " + std::to_string(c.hidden_size) + "]");
  w.gate = bind_weight_matrix(gate, c.num_experts, c.hidden_size);
  const int64_t im = c.moe_intermediate_size;
  w.gate_up_proj = expert_slices(store.get(prefix + "mlp.experts.gate_up_proj"), c.num_experts, c.hidden_size,
                                 2 * im, config);
  w.down_proj = expert_slices(store.get(prefix + "mlp.experts.down_proj"), c.num_experts, im, c.hidden_size, config);
  return w;
}

void ExpertUsage::reset() {
  rows.clear();
  calls.clear();
  weight_bytes = 0;
  expert_calls = 0;
}

int64_t ExpertUsage::distinct_experts(int64_t layer) const {
  if (layer >= static_cast<int64_t>(calls.size())) return 0;
  const auto& per_expert = calls[static_cast<size_t>(layer)];
  return std::count_if(per_expert.begin(), per_expert.end(), [](int64_t count) { return count > 0; });
}

// torch's CPU topk (aten/src/ATen/native/cpu/SortingKernel.cpp, topk_impl_loop, largest=True, sorted=True):
// (value, index) pairs in double, std::partial_sort when k * 64 <= count, else std::nth_element at k-1 followed by
// std::sort of the first k-1; NaN counts as largest. The same libstdc++ algorithms give the same order of ties.
void topk_like_torch(const float* values, int64_t count, int64_t k, int32_t* indices) {
  using Elem = std::pair<double, int64_t>;
  std::vector<Elem> queue(static_cast<size_t>(count));
  for (int64_t j = 0; j < count; ++j) queue[j] = {values[j], j};
  auto greater = [](const Elem& x, const Elem& y) {
    return (std::isnan(x.first) && !std::isnan(y.first)) || (x.first > y.first);
  };
  if (k * 64 <= count) {
    std::partial_sort(queue.begin(), queue.begin() + k, queue.end(), greater);
  } else {
    std::nth_element(queue.begin(), queue.begin() + (k - 1), queue.end(), greater);
    std::sort(queue.begin(), queue.begin() + (k - 1), greater);
  }
  for (int64_t j = 0; j < k; ++j) indices[j] = static_cast<int32_t>(queue[j].second);
}

void sparse_moe_block(const MoeLayerWeights& weights, const TextConfig& config, int64_t layer, const float* x,
                      int64_t n, float* out, MoeWorkspace& work, Precision precision, const TensorHook& hook,
                      const ops::Context& ctx) {
  const int64_t hidden = config.hidden_size;
  const int64_t experts = weights.num_experts();
  const int64_t k = config.num_experts_per_tok;
  const int64_t im = config.moe_intermediate_size;
  const std::string name = hook ? "layers." + std::to_string(layer) + ".mlp" : "";

  // Qwen3VLMoeTextTopKRouter.
  work.router_logits.resize(static_cast<size_t>(n * experts));
  work.probs.resize(work.router_logits.size());
  work.top_index.resize(static_cast<size_t>(n * k));
  work.scores.resize(static_cast<size_t>(n * k));
  ops::linear(ctx, x, n, weights.gate, work.router_logits.data(), precision);  // [n, E]
  for (int64_t t = 0; t < n; ++t) {
    float* p = work.probs.data() + t * experts;
    router_softmax(work.router_logits.data() + t * experts, experts, p);  // [E] float32
    int32_t* picked = work.top_index.data() + t * k;
    topk_like_torch(p, experts, k, picked);
    float total = 0.f;
    for (int64_t r = 0; r < k; ++r) total += p[picked[r]];
    for (int64_t r = 0; r < k; ++r) work.scores[t * k + r] = round_to(precision, p[picked[r]] / total);
  }
  if (hook) {
    hook(name + ".router_logits", work.router_logits.data(), n, experts);
    hook(name + ".router_probs", work.probs.data(), n, experts);
    work.top_index_f.assign(work.top_index.begin(), work.top_index.end());
    hook(name + ".router_indices", work.top_index_f.data(), n, k);
    hook(name + ".router_scores", work.scores.data(), n, k);
  }

  // Qwen3VLMoeTextExperts, grouped by expert: gather the rows routed to e, one gate_up and one down matmul.
  ExpertUsage& usage = work.usage;
  if (static_cast<int64_t>(usage.rows.size()) < config.num_hidden_layers) {
    usage.rows.resize(static_cast<size_t>(config.num_hidden_layers));
    usage.calls.resize(static_cast<size_t>(config.num_hidden_layers));
  }
  usage.rows[layer].resize(static_cast<size_t>(experts));
  usage.calls[layer].resize(static_cast<size_t>(experts));
  work.weighted.resize(static_cast<size_t>(n * k * hidden));  // [n, k, hidden]: pick r of token t at (t * k + r)
  for (int64_t e = 0; e < experts; ++e) {
    work.group.clear();  // flat pick indices t * k + r routed to e, in token order
    for (int64_t pick = 0; pick < n * k; ++pick)
      if (work.top_index[pick] == e) work.group.push_back(pick);
    const int64_t m = static_cast<int64_t>(work.group.size());
    if (m == 0) continue;
    work.rows_in.resize(static_cast<size_t>(m * hidden));
    work.gate_up.resize(static_cast<size_t>(m * 2 * im));
    work.act.resize(static_cast<size_t>(m * im));
    work.rows_out.resize(static_cast<size_t>(m * hidden));
    for (int64_t i = 0; i < m; ++i)
      std::copy_n(x + (work.group[i] / k) * hidden, hidden, work.rows_in.data() + i * hidden);  // [m, hidden]
    ops::linear(ctx, work.rows_in.data(), m, weights.gate_up_proj[e], work.gate_up.data(), precision);  // [m, 2*Im]
    for (int64_t i = 0; i < m; ++i) {  // gate, up = gate_up.chunk(2, dim=-1); act_fn(gate) * up
      const float* gu = work.gate_up.data() + i * 2 * im;
      ops::silu_mul(ctx, gu, gu + im, static_cast<size_t>(im), work.act.data() + i * im, precision);  // [m, Im]
    }
    ops::linear(ctx, work.act.data(), m, weights.down_proj[e], work.rows_out.data(), precision);  // [m, hidden]
    for (int64_t i = 0; i < m; ++i) {
      const int64_t pick = work.group[i];
      const float score = work.scores[pick];
      float* dst = work.weighted.data() + pick * hidden;
      const float* src = work.rows_out.data() + i * hidden;
      for (int64_t d = 0; d < hidden; ++d) dst[d] = round_to(precision, src[d] * score);
    }
    usage.rows[layer][e] += m;
    usage.calls[layer][e] += 1;
    usage.weight_bytes += weights.expert_bytes(e);
    usage.expert_calls += 1;
  }

  // weighted.view(n, k, hidden).sum(dim=1): float accumulation in rank order, one rounding.
  for (int64_t t = 0; t < n; ++t)
    for (int64_t d = 0; d < hidden; ++d) {
      float sum = 0.f;
      for (int64_t r = 0; r < k; ++r) sum += work.weighted[(t * k + r) * hidden + d];
      out[t * hidden + d] = round_to(precision, sum);
    }
  if (hook) hook(name, out, n, hidden);
}

}  // namespace qwen3vl
