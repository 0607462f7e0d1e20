// The qwen3_vl_moe sparse block for training: the float32 forward of model/moe.h keeping what the backward needs,
// and its backward (router, top-k renormalisation, experts). No gradient flows through the choice of experts
// (torch.topk's indices), as in PyTorch.
#pragma once

#include <cstdint>
#include <vector>

#include "io/model_config.h"
#include "model/moe.h"
#include "model/train_grads.h"
#include "ops/ops.h"

namespace qwen3vl {

struct MoeTrainActivations {
  std::vector<float> probs;          // [n, E] float32 softmax of the router logits
  std::vector<int32_t> top_index;    // [n, k] experts picked per token, torch.topk order
  std::vector<float> scores;         // [n, k] top / sum(top)
  std::vector<float> expert_out;     // [n, k, hidden] each pick's expert output before the score
  // Per expert: the picks (t * k + r) routed to it in token order, and its intermediates.
  std::vector<std::vector<int64_t>> group;          // [E]
  std::vector<std::vector<float>> gate_up, act;     // [E]: [m, 2*Im], [m, Im]

  void clear();
};

// out [n, hidden] = the sparse MoE block of `weights` on x [n, hidden] (post-attention-normed), in float32.
void moe_train_forward(const MoeLayerWeights& weights, const TextConfig& config, const float* x, int64_t n,
                       float* out, MoeTrainActivations& acts, const ops::Context& ctx);

// dout [n, hidden] -> dx [n, hidden] (written) and the gradients of `grads` (accumulated; null parts skipped).
void moe_train_backward(const MoeLayerWeights& weights, const TextConfig& config, const float* x, int64_t n,
                        const MoeTrainActivations& acts, const float* dout, float* dx, const MoeLayerGrads& grads,
                        const ops::Context& ctx);

}  // namespace qwen3vl
