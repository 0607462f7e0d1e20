// Where the gradients of one training run go, per weight of the model, mirroring TextWeights / VisionWeights.
// The buffers belong to the trainer's parameter set (train/parameters.h); these structs only point into them.
// A null pointer (or an ops::LinearGrads with nothing set) means the weight is frozen: the backward computes no
// gradient for it, and a part of the model with nothing trainable upstream of it is not differentiated at all.
// All buffers are float32 and accumulated (+=), laid out like the weight they belong to.
#pragma once

#include <vector>

#include "ops/backward.h"

namespace qwen3vl {

// RMSNorm (weight only) and LayerNorm (weight and bias).
struct NormGrads {
  float* weight = nullptr;
  float* bias = nullptr;
  bool any() const { return weight || bias; }
};

// qwen3_vl_moe sparse block: the router and, per expert, views into the fused expert gradients (laid out like the
// fused weights: per expert [hidden, 2*moe_intermediate] and [moe_intermediate, hidden] input-major).
struct MoeLayerGrads {
  ops::LinearGrads gate;
  std::vector<ops::LinearGrads> gate_up_proj;  // [e]
  std::vector<ops::LinearGrads> down_proj;     // [e]
  bool any() const;
};

struct TextLayerGrads {
  NormGrads input_layernorm;
  ops::LinearGrads q_proj, k_proj, v_proj, o_proj;
  NormGrads q_norm, k_norm;
  NormGrads post_attention_layernorm;
  ops::LinearGrads gate_proj, up_proj, down_proj;
  MoeLayerGrads moe;
  bool any() const;
};

struct TextGrads {
  float* embed_tokens = nullptr;  // [vocab, hidden]; the same buffer as lm_head.weight when the head is tied
  std::vector<TextLayerGrads> layers;
  NormGrads norm;
  ops::LinearGrads lm_head;
  bool any() const;
};

struct VisionBlockGrads {
  NormGrads norm1;
  ops::LinearGrads qkv, proj;  // attn.qkv, attn.proj (bias in .bias)
  NormGrads norm2;
  ops::LinearGrads linear_fc1, linear_fc2;
  bool any() const;
};

struct VisionMergerGrads {
  NormGrads norm;
  ops::LinearGrads linear_fc1, linear_fc2;
  bool any() const;
};

struct VisionGrads {
  ops::LinearGrads patch_embed;  // patch_embed.proj as a linear over the flattened patch (weight [D, K], bias [D])
  float* pos_embed = nullptr;    // [num_position_embeddings, D]
  std::vector<VisionBlockGrads> blocks;
  VisionMergerGrads merger;
  std::vector<VisionMergerGrads> deepstack_merger_list;
  bool any() const;
};

}  // namespace qwen3vl
