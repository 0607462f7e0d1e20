// The sparse mixture-of-experts block of qwen3_vl_moe (transformers' Qwen3VLMoeTextSparseMoeBlock =
// Qwen3VLMoeTextTopKRouter + Qwen3VLMoeTextExperts), computed sparsely: only the experts the router selects are
// read, straight from the memory-mapped checkpoint; prefill groups the rows routed to each expert into one matmul
// pair per expert.
//
// Numerics follow transformers 5.23 with its default experts implementation ("grouped_mm", which is what
// from_pretrained picks on CPU):
//   router_logits = x · gate^T                                [n, E], activation dtype (rounded in bf16)
//   probs         = softmax(router_logits) in float32         [n, E]
//   top-k         = torch.topk(probs, k), ties ordered as torch's CPU kernel orders them
//   scores        = top / sum(top) in float32, then cast to the activation dtype  (always renormalized: 5.23 has
//                   no norm_topk_prob switch, the router divides unconditionally)
//   per expert e  : y = down_proj[e](silu(g) * u), [g | u] = x · gate_up_proj[e]  (each step rounded in bf16)
//   weighted      = y * score                                  (rounded in bf16)
//   out[t]        = sum over the k picks of token t, in top-k rank order, accumulated in float32 and rounded once
//                   (torch's .sum(dim=1) over [n, k, H]; the eager index_add_ path would round after every add).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/tensor_hook.h"
#include "ops/ops.h"

namespace qwen3vl {

struct MoeLayerWeights {
  WeightMatrix gate;                       // mlp.gate.weight [num_experts, hidden] (router, nn.Linear layout)
  // Per expert e, views into the fused tensors (no copy). On disk, released checkpoints store
  //   mlp.experts.gate_up_proj [E, hidden, 2*moe_intermediate] (input-major, gate columns first) and
  //   mlp.experts.down_proj    [E, moe_intermediate, hidden]   (input-major);
  // transformers 5 save_pretrained writes the transposed in-memory layout [E, 2*Im, hidden] / [E, hidden, Im].
  // Both load; like transformers' Transpose(check_dims=True), a shape equal to the in-memory one is taken as such.
  std::vector<WeightMatrix> gate_up_proj;  // [e]: hidden -> 2*moe_intermediate
  std::vector<WeightMatrix> down_proj;     // [e]: moe_intermediate -> hidden

  bool empty() const { return gate_up_proj.empty(); }
  int64_t num_experts() const { return static_cast<int64_t>(gate_up_proj.size()); }
  int64_t expert_bytes(int64_t e) const;   // bytes of expert e's gate_up_proj and down_proj slices
};

// Binds PREFIX + "mlp.gate.weight", "mlp.experts.gate_up_proj", "mlp.experts.down_proj" (PREFIX = "...layers.{l}.").
// Throws Error naming the file and tensor for a missing tensor or a shape the config contradicts.
MoeLayerWeights bind_moe_layer(const TensorStore& store, const std::string& prefix, const ModelConfig& config);

// Which experts ran and how many expert-weight bytes they read, accumulated until reset().
struct ExpertUsage {
  std::vector<std::vector<int64_t>> rows;   // [layer][expert]: token rows the expert computed
  std::vector<std::vector<int64_t>> calls;  // [layer][expert]: grouped matmul pairs run (each reads the weights once)
  int64_t weight_bytes = 0;                 // expert weight bytes read: sum over calls of expert_bytes(e)
  int64_t expert_calls = 0;                 // total calls over all layers

  void reset();
  int64_t distinct_experts(int64_t layer) const;  // experts of `layer` that ran at least once
};

// Per-request scratch of the MoE block, plus its usage counter.
struct MoeWorkspace {
  std::vector<float> router_logits, probs, scores, top_index_f, rows_in, gate_up, act, rows_out, weighted;
  std::vector<int32_t> top_index;
  std::vector<int64_t> group;
  ExpertUsage usage;
};

// out [n, hidden] = the sparse MoE block on x [n, hidden] (the post-attention-normed hidden states) of decoder
// layer `layer`. Hook names: "layers.{l}.mlp.router_logits" [n, E], "layers.{l}.mlp.router_probs" [n, E] (float32
// softmax), "layers.{l}.mlp.router_indices" [n, k] (expert ids as floats), "layers.{l}.mlp.router_scores" [n, k],
// "layers.{l}.mlp" [n, hidden].
void sparse_moe_block(const MoeLayerWeights& weights, const TextConfig& config, int64_t layer, const float* x,
                      int64_t n, float* out, MoeWorkspace& work, Precision precision, const TensorHook& hook,
                      const ops::Context& ctx = {});

// softmax(logits, dtype=float32) of the router as PyTorch's CPU kernel computes it: exp(x - max) scaled by 1 / sum.
void router_softmax(const float* logits, int64_t count, float* probs);

// The k largest of values[0..count) in torch.topk's order on CPU (largest first; equal values in the order its
// std::nth_element + std::sort selection leaves them, which is not index order).
void topk_like_torch(const float* values, int64_t count, int64_t k, int32_t* indices);

}  // namespace qwen3vl
