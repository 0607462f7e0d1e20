// Weights of the Qwen3-VL vision tower (transformers' Qwen3VLVisionModel), bound by HF tensor name to a
// TensorStore and checked against vision_config. Immutable after load; they point into the mapped checkpoint.
// D = hidden_size, I = intermediate_size, O = out_hidden_size, m = spatial_merge_size, K = in_channels *
// temporal_patch_size * patch_size^2 (1536 for the released models).
#pragma once

#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/safetensors.h"
#include "ops/ops.h"

namespace qwen3vl {

// nn.Linear with bias.
struct VisionLinear {
  WeightMatrix weight;  // [out, in]
  WeightVector bias;    // [out]
};

// nn.LayerNorm (elementwise affine, eps 1e-6 everywhere in the tower).
struct VisionLayerNorm {
  WeightVector weight;  // [dim]
  WeightVector bias;    // [dim]
};

// Qwen3VLVisionBlock: blocks.{i}.*
struct VisionBlockWeights {
  VisionLayerNorm norm1;   // [D]
  VisionLinear qkv;        // attn.qkv: [3D, D]; output columns are q (all heads), then k, then v
  VisionLinear proj;       // attn.proj: [D, D]
  VisionLayerNorm norm2;   // [D]
  VisionLinear linear_fc1; // mlp.linear_fc1: [I, D]
  VisionLinear linear_fc2; // mlp.linear_fc2: [D, I]
};

// Qwen3VLVisionPatchMerger: merger.* (norm over D, before the m x m shuffle) or deepstack_merger_list.{k}.*
// (use_postshuffle_norm: norm over m*m*D, after the shuffle).
struct VisionMergerWeights {
  bool use_postshuffle_norm = false;
  VisionLayerNorm norm;     // [D] or [m*m*D]
  VisionLinear linear_fc1;  // [m*m*D, m*m*D]
  VisionLinear linear_fc2;  // [O, m*m*D]
};

struct VisionWeights {
  std::string prefix;       // "model.visual." (Qwen3-VL) or "visual." (Qwen2/2.5-VL layout)
  VisionLinear patch_embed; // patch_embed.proj: Conv3d weight [D, C, T, P, P] read as [D, K], bias [D]
  WeightMatrix pos_embed;   // pos_embed.weight [num_position_embeddings, D]: a side x side grid, row-major
  std::vector<VisionBlockWeights> blocks;
  VisionMergerWeights merger;
  std::vector<VisionMergerWeights> deepstack_merger_list;  // one per deepstack_visual_indexes entry
  DType dtype = DType::F32;  // dtype of patch_embed.proj.weight: the dtype the tower runs in
};

// Throws Error naming the checkpoint file and tensor for a missing tensor or a shape the config contradicts,
// and naming config.json for a vision_config the encoder cannot run.
VisionWeights bind_vision_weights(const TensorStore& store, const ModelConfig& config);

}  // namespace qwen3vl
