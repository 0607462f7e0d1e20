// The Qwen3-VL vision tower in training mode (transformers' Qwen3VLVisionModel under autograd): a forward that
// keeps what the backward needs, and the backward that accumulates the gradient of every trainable tower weight.
// Training computes in float32 whatever the checkpoint dtype (bf16 weights are read as their exact float values),
// with the same ops in the same order as VisionEncoder::forward, so on an fp32 checkpoint the outputs are the
// inference tower's bit for bit. N = patches, M = N/m^2 merged tokens, D = hidden_size, I = intermediate_size,
// O = out_hidden_size, K = the flattened patch (1536 for the released models).
#pragma once

#include <cstdint>
#include <vector>

#include "io/model_config.h"
#include "model/train_grads.h"
#include "model/vision_encoder.h"
#include "model/vision_positions.h"
#include "model/vision_weights.h"
#include "ops/ops.h"
#include "vision/grid_thw.h"

namespace qwen3vl {

// One Qwen3VLVisionBlock. `input` is always kept; the rest is empty under activation checkpointing (the backward
// recomputes it from `input`, as transformers' GradientCheckpointingLayer reruns the block).
struct VisionBlockActivations {
  std::vector<float> input;    // [N, D] block input
  std::vector<float> norm1;    // [N, D] norm1(input): attn.qkv input
  std::vector<float> q, k, v;  // [N, heads, head_dim] each; q and k after the rotary
  std::vector<float> attn;     // [N, D] attention output: attn.proj input
  std::vector<float> hidden;   // [N, D] input + attn.proj(attn): norm2 input
  std::vector<float> norm2;    // [N, D] mlp.linear_fc1 input
  std::vector<float> fc1;      // [N, I] mlp.linear_fc1 output: the activation's input
  std::vector<float> act;      // [N, I] hidden_act(fc1): mlp.linear_fc2 input
};

// One Qwen3VLVisionPatchMerger (its input is a block output, kept elsewhere).
struct VisionMergerActivations {
  std::vector<float> normed;  // [N, D] = [M, m^2 D] norm output: linear_fc1 input
  std::vector<float> fc1;     // [M, m^2 D] linear_fc1 output: the GELU's input
  std::vector<float> act;     // [M, m^2 D] GELU(fc1): linear_fc2 input
};

// Everything one forward leaves for its backward. Filled by VisionEncoderTrainer::forward; read-only afterwards.
struct VisionActivations {
  std::vector<GridTHW> grids;
  int64_t tokens = 0;                 // N
  bool checkpointed = false;          // blocks keep only their input
  std::vector<float> pixels;          // [N, K] patch_embed input
  std::vector<PosEmbedTaps> taps;     // [N] pos_embed interpolation taps
  std::vector<float> cos, sin;        // [N, head_dim] vision rotary
  std::vector<int64_t> cu_seqlens;    // attention segments, one per temporal slice
  std::vector<VisionBlockActivations> blocks;    // [depth]
  std::vector<float> output;                     // [N, D] last block output: the main merger's input
  VisionMergerActivations merger;
  std::vector<VisionMergerActivations> deepstack;  // one per deepstack_visual_indexes entry
};

// What one backward differentiated: evidence that frozen parts cost no work, without timing.
struct VisionBackwardWork {
  int64_t blocks = 0;              // blocks differentiated
  int64_t recomputed_blocks = 0;   // of which re-run forward from their input (activation checkpointing)
  int64_t mergers = 0;             // merger and DeepStack mergers differentiated
  int64_t linear_backward_calls = 0;
};

class VisionEncoderTrainer {
 public:
  // weights: the tower's views, with LoRA terms bound where adapters train (AdaptedWeights::vision()).
  // activation_checkpointing: keep only each block's input and recompute the block during backward (same
  // gradients bit for bit, less memory).
  VisionEncoderTrainer(const ModelConfig& config, const VisionWeights& weights, const ops::Context& ctx = {},
                       bool activation_checkpointing = false);

  // As VisionEncoder::forward (pixel_values [N, K] in the processor's patch order, one GridTHW per image / video),
  // in float32; `acts` is overwritten with what backward() needs. Throws Error for a grid the tower cannot take.
  VisionOutput forward(const float* pixel_values, const std::vector<GridTHW>& grids, VisionActivations& acts) const;

  // Accumulates (+=) into every non-null buffer of `grads` the gradient of a loss whose gradient is d_embeds
  // [M, O] at VisionOutput::embeds and d_deepstack[k] [M, O] at VisionOutput::deepstack[k]. A null d_embeds or
  // d_deepstack entry (or an empty d_deepstack) means no gradient from that output. grads.blocks and
  // grads.deepstack_merger_list are empty (all frozen) or sized like the weights. Only what leads to a trainable
  // weight is differentiated: e.g. with only the mergers trainable no block is. LoRA factors' gradients go to
  // LinearGrads::lora_A / lora_B, one entry per term of the weight's lora list.
  VisionBackwardWork backward(const VisionActivations& acts, const float* d_embeds,
                              const std::vector<const float*>& d_deepstack, const VisionGrads& grads) const;

  bool activation_checkpointing() const { return checkpointing_; }
  int64_t patch_dim() const { return weights_.patch_embed.weight.cols; }

 private:
  // Qwen3VLVisionBlock.forward of block `index` on input [N, D]: every intermediate but the input into `a`, the
  // output into `out` [N, D].
  void block_forward(int64_t index, const VisionActivations& acts, const float* input, VisionBlockActivations& a,
                     float* out) const;
  // Backward of block `index` (input: acts.blocks[index].input, intermediates: a): dh holds the gradient at its output on entry and at its input on return (when
  // need_dx; else its content is unspecified).
  void block_backward(int64_t index, const VisionActivations& acts, const VisionBlockActivations& a,
                      const VisionBlockGrads& g, bool need_dx, float* dh, VisionBackwardWork& work) const;
  // Qwen3VLVisionPatchMerger.forward of `input` [N, D] into `a`; returns [M, O].
  std::vector<float> merger_forward(const VisionMergerWeights& w, const float* input, int64_t n,
                                    VisionMergerActivations& a) const;
  // Its backward for dy [M, O]; dh (null: not wanted) accumulates the gradient at `input`.
  void merger_backward(const VisionMergerWeights& w, const VisionMergerActivations& a, const float* input, int64_t n,
                       const float* dy, const VisionMergerGrads& g, float* dh, VisionBackwardWork& work) const;
  void linear_backward(const float* x, int64_t n, const WeightMatrix& w, const float* dy, float* dx,
                       const ops::LinearGrads& g, VisionBackwardWork& work) const;

  const VisionConfig& config_;
  const VisionWeights& weights_;
  VisionRotary rotary_;
  int64_t head_dim_;
  int64_t side_;  // the learned position table is side x side
  ops::Context ctx_;
  bool checkpointing_;
};

}  // namespace qwen3vl
