// The Qwen3-VL vision tower (transformers' Qwen3VLVisionModel): normalized patches in, merged visual tokens and
// DeepStack features out. Weights are only read; everything per call lives in the call.
#pragma once

#include <string>
#include <vector>

#include "io/model_config.h"
#include "model/tensor_hook.h"
#include "model/vision_positions.h"
#include "model/vision_weights.h"
#include "ops/ops.h"
#include "vision/grid_thw.h"

namespace qwen3vl {

struct VisionOutput {
  std::vector<float> embeds;                  // [sum merged tokens, out_hidden_size]: merger output, images in order
  std::vector<std::vector<float>> deepstack;  // one per deepstack_visual_indexes entry, each like embeds
};

// Throws Error when `weights` were bound for another vision_config (block or DeepStack merger count), naming the
// config file. The inference and the training tower both check this at construction.
void check_vision_weights(const ModelConfig& config, const VisionWeights& weights);
// Throws Error for a grid the tower cannot take: non-positive, or h / w not multiples of spatial_merge_size.
void check_vision_grids(const VisionConfig& config, const std::vector<GridTHW>& grids);

class VisionEncoder {
 public:
  // ctx: the thread pool and kernels every op of forward() uses (a default Context: the calling thread alone).
  VisionEncoder(const ModelConfig& config, const VisionWeights& weights, const ops::Context& ctx = {});

  // pixel_values [sum(t*h*w), in_channels*temporal_patch_size*patch_size^2] in the processor's patch order; one
  // GridTHW per image / video. All entries go through one call (attention stays inside each temporal slice).
  // Hook names ([rows, cols] floats): "patch_embed" [N, D], "pos_embed" [N, D] (the interpolated embedding added to
  // it), "rotary.cos" / "rotary.sin" [N, head_dim], "blocks.{i}" [N, D] (output of block i), "deepstack.{k}" and
  // "merger" [N/m^2, out_hidden_size]. Throws Error for a grid the tower cannot take.
  VisionOutput forward(const float* pixel_values, const std::vector<GridTHW>& grids,
                       const TensorHook& hook = nullptr) const;

  Precision precision() const { return precision_; }
  const ops::Context& context() const { return ctx_; }
  // Patches per image row of pixel_values (1536 for the released models).
  int64_t patch_dim() const { return weights_.patch_embed.weight.cols; }

 private:
  // Activations of one block, allocated by the first block of a forward and reused by the others.
  struct BlockScratch {
    std::vector<float> normed, qkv, q, k, v, mlp;
  };
  // Qwen3VLVisionBlock: hidden [n, D] updated in place.
  void block(int64_t index, std::vector<float>& hidden, const std::vector<int64_t>& cu_seqlens,
             const std::vector<float>& cos, const std::vector<float>& sin, BlockScratch& scratch) const;
  // Qwen3VLVisionPatchMerger: hidden [n, D] -> [n/m^2, out_hidden_size].
  std::vector<float> merge(const VisionMergerWeights& w, const std::vector<float>& hidden) const;

  const VisionConfig& config_;
  const VisionWeights& weights_;
  VisionRotary rotary_;
  int64_t head_dim_;
  int64_t side_;  // the learned position table is side x side
  Precision precision_;
  ops::Context ctx_;
};

}  // namespace qwen3vl
