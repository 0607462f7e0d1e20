// Weights of the Qwen3-VL language model, bound by name to tensors of a TensorStore and checked against the
// config. Immutable after load; they point into the memory-mapped checkpoint.
#pragma once

#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/moe.h"
#include "ops/ops.h"

namespace qwen3vl {

struct TextLayerWeights {
  WeightVector input_layernorm;           // [hidden]
  WeightMatrix q_proj;                    // [num_heads*head_dim, hidden]
  WeightMatrix k_proj;                    // [num_kv_heads*head_dim, hidden]
  WeightMatrix v_proj;                    // [num_kv_heads*head_dim, hidden]
  WeightMatrix o_proj;                    // [hidden, num_heads*head_dim]
  WeightVector q_norm;                    // [head_dim]
  WeightVector k_norm;                    // [head_dim]
  WeightVector post_attention_layernorm;  // [hidden]
  WeightMatrix gate_proj;                 // [intermediate, hidden]
  WeightMatrix up_proj;                   // [intermediate, hidden]
  WeightMatrix down_proj;                 // [hidden, intermediate]
  MoeLayerWeights moe;                    // qwen3_vl_moe: the sparse MoE block in place of gate/up/down_proj
                                          // (empty in dense layers)
};

struct TextWeights {
  std::string prefix;                // "model.language_model." (Qwen3-VL) or "model." (Qwen2/2.5-VL layout)
  WeightMatrix embed_tokens;         // [vocab, hidden]
  std::vector<TextLayerWeights> layers;
  WeightVector norm;                 // [hidden]
  WeightMatrix lm_head;              // [vocab, hidden]; embed_tokens when tied
  bool lm_head_tied = false;
  DType dtype = DType::F32;          // dtype of embed_tokens: the dtype the checkpoint runs in
};

// Throws Error naming the checkpoint file and tensor for a missing tensor or a shape the config contradicts.
TextWeights bind_text_weights(const TensorStore& store, const ModelConfig& config);

}  // namespace qwen3vl
