// The Qwen3-VL text decoder for training: the forward of TextDecoder (model/text_decoder.h) over a whole
// (possibly packed) sequence without a KV cache, keeping what the backward needs, and the backward into the
// gradient buffers of model/train_grads.h. Computes in float32 whatever the checkpoint dtype (the weights of a bf16
// checkpoint are read as their exact float values, as PyTorch trains a model loaded with torch_dtype=float32).
//
// A packed sequence holds several samples; cu_seqlens [0, len_0, len_0 + len_1, ...] splits it, attention is causal
// inside each sample and never crosses samples (qwen-vl-finetune's flash_attn_varlen_func path), and positions
// restart per sample (the caller's MropePositions).
#pragma once

#include <cstdint>
#include <vector>

#include "io/model_config.h"
#include "model/moe_train.h"
#include "model/mrope.h"
#include "model/text_decoder.h"
#include "model/text_weights.h"
#include "model/train_grads.h"
#include "ops/ops.h"

namespace qwen3vl {

// What the backward of one decoder layer reads. With activation checkpointing only `input` is kept between the
// forward and the backward; the rest is recomputed from it (bit-identical: the same ops in the same order).
struct TextLayerActivations {
  std::vector<float> input;         // [n, hidden] the layer's input (residual stream)
  std::vector<float> normed1;       // [n, hidden] input_layernorm(input)
  std::vector<float> q_proj, k_proj;  // [n, heads*head_dim], [n, kv_heads*head_dim] before q_norm / k_norm
  std::vector<float> q, k, v;       // the attention's inputs (after norm and rotary; v as projected)
  std::vector<float> attn;          // [n, heads*head_dim] attention output (o_proj input)
  std::vector<float> mid;           // [n, hidden] residual after the attention block
  std::vector<float> normed2;       // [n, hidden] post_attention_layernorm(mid)
  std::vector<float> gate, up;      // dense MLP [n, intermediate] before the activation
  std::vector<float> act;           // silu(gate) * up (down_proj input)
  MoeTrainActivations moe;          // MoE layers

  void release_intermediates();     // keeps `input` only
};

struct TextActivations {
  int64_t n = 0;
  std::vector<int64_t> cu_seqlens;
  std::vector<float> cos, sin;               // [n, head_dim]
  std::vector<TextLayerActivations> layers;
  std::vector<float> final_input;            // [n, hidden] input of the final norm
  std::vector<float> normed;                 // [n, hidden] output of the final norm (lm_head input)
  std::vector<int64_t> deepstack_rows;       // visual rows the DeepStack features were added to
  int64_t deepstack_levels = 0;              // features were added after layers 0 .. deepstack_levels - 1
};

// Loss of one forward: the sum over supervised rows of -log softmax(logits)[target] and their number.
struct LossSum {
  double sum = 0.0;
  int64_t count = 0;
};

class TextDecoderTrainer {
 public:
  // weights: the views training reads (trainable tensors point at the master copies, LoRA terms bound);
  // checkpoint_layers: keep only each layer's input and recompute the rest in the backward.
  TextDecoderTrainer(const ModelConfig& config, const TextWeights& weights, const ops::Context& ctx,
                     bool checkpoint_layers = false);

  // inputs_embeds [n, hidden]; positions: n entries; cu_seqlens: sample boundaries (size >= 2, last = n);
  // deepstack: features added at the visual rows after the first layers (null: none). Leaves the final norm's
  // output in acts.normed.
  void forward(const float* inputs_embeds, int64_t n, const MropePositions& positions,
               const std::vector<int64_t>& cu_seqlens, const DeepstackInjection* deepstack,
               TextActivations& acts) const;

  // lm_head + ForCausalLMLoss on acts.normed: targets[i] = the label of row i + 1 of the same sample (-100 at a
  // sample's last row). Only supervised rows get logits (the others have no loss and no gradient). Adds
  // grad_scale * d(sum of row losses) into grads.lm_head and writes d normed [n, hidden] (zero on unsupervised
  // rows) into d_normed (null: loss only).
  LossSum lm_head_loss(const TextActivations& acts, const int32_t* targets, float grad_scale,
                       const ops::LinearGrads& lm_head_grads, float* d_normed) const;

  // Logits [n, vocab] of every row (tests and evaluation).
  void logits(const TextActivations& acts, std::vector<float>& out) const;

  // Backward from d_normed (gradient of the final norm's output, [n, hidden]). Accumulates into `grads`; writes
  // d inputs_embeds [n, hidden] when d_inputs_embeds is non-null, and the gradient of each DeepStack level at its
  // rows into d_deepstack (when non-null: resized to the levels, each [rows, hidden]). Layers below the lowest one
  // with anything trainable are not differentiated when no input gradient is wanted.
  void backward(TextActivations& acts, const float* d_normed, const TextGrads& grads, float* d_inputs_embeds,
                std::vector<std::vector<float>>* d_deepstack) const;

  const ops::Context& context() const { return ctx_; }

 private:
  // One decoder layer forward from a.input, filling every field of a; leaves the layer's output in `out`.
  void layer_forward(int64_t layer, const TextActivations& acts, TextLayerActivations& a, std::vector<float>& out) const;
  // One decoder layer backward: d_hidden holds d(layer output) on entry and d(layer input) on exit.
  void layer_backward(int64_t layer, const TextActivations& acts, const TextLayerActivations& a,
                      const TextLayerGrads& grads, std::vector<float>& d_hidden) const;
  void attention_forward(int64_t layer, const TextActivations& acts, TextLayerActivations& a) const;

  const TextConfig& config_;
  const TextWeights& weights_;
  TextRotary rotary_;
  ops::Context ctx_;
  bool checkpoint_layers_;
};

// targets[i] = labels[i + 1] inside each sample of cu_seqlens, -100 at each sample's last row (HF's shift_labels,
// per sample of a packed row).
std::vector<int32_t> shift_labels(const std::vector<int32_t>& labels, const std::vector<int64_t>& cu_seqlens);

}  // namespace qwen3vl
