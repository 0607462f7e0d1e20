// One training forward and backward of the whole Qwen3VLForConditionalGeneration on a (possibly packed) batch:
// the vision tower over every image and video of the batch, its merged features scattered into the placeholder
// rows (Qwen3VLModel.forward's masked_scatter), DeepStack, the text decoder, lm_head and ForCausalLMLoss; then the
// gradients of everything trainable. Parts with nothing trainable at or below them are run without activations
// and not differentiated (e.g. the tower when only the language model trains).
#pragma once

#include <cstdint>
#include <vector>

#include "io/model_config.h"
#include "model/mrope.h"
#include "model/text_decoder_train.h"
#include "model/text_weights.h"
#include "model/train_grads.h"
#include "model/vision_weights.h"
#include "ops/ops.h"
#include "vision/grid_thw.h"

namespace qwen3vl {

// A batch as the model sees it: one row of n tokens holding one or more samples (qwen-vl-finetune's flattened
// form: data_flatten / data_packing), each with its own positions restarting at 0.
struct TrainInputs {
  std::vector<int32_t> input_ids;      // [n]
  std::vector<int32_t> labels;         // [n] unshifted; -100 = not supervised
  MropePositions positions;            // n entries: each sample's get_rope_index
  std::vector<int64_t> cu_seqlens;     // sample boundaries [0, ..., n]
  std::vector<float> pixel_values;     // images in prompt order: [sum t*h*w, patch_dim]
  std::vector<GridTHW> image_grids;
  std::vector<float> pixel_values_videos;  // videos in prompt order
  std::vector<GridTHW> video_grids;
};

// Number of rows whose shifted target is supervised (the N of the mean loss).
int64_t supervised_tokens(const TrainInputs& inputs);

class ModelTrainer {
 public:
  // weights: the views training reads (model/train_grads.h explains the gradient side); vision may be null for a
  // text-only batch stream. checkpoint_layers: recompute each layer / block from its input in the backward.
  ModelTrainer(const ModelConfig& config, const TextWeights& text, const VisionWeights* vision,
               const ops::Context& ctx, bool checkpoint_layers = false);

  // Forward and backward of one micro-batch. The loss is sum_rows(-log p(target)); grad_scale multiplies it before
  // differentiation (1 / N for a mean, 1 / (N * accumulation) for transformers' per-micro-batch mean).
  // Accumulates into the non-null buffers of text_grads / vision_grads (vision_grads may be null: tower frozen).
  LossSum forward_backward(const TrainInputs& inputs, float grad_scale, const TextGrads& text_grads,
                           const VisionGrads* vision_grads) const;

  // Forward only: the loss, and the logits [n, vocab] of every row when `logits` is non-null.
  LossSum forward(const TrainInputs& inputs, std::vector<float>* logits = nullptr) const;

 private:
  struct Embedded;
  Embedded embed(const TrainInputs& inputs, bool keep_vision) const;

  const ModelConfig& config_;
  const TextWeights& text_;
  const VisionWeights* vision_;
  ops::Context ctx_;
  bool checkpoint_layers_;
  TextDecoderTrainer decoder_;
};

}  // namespace qwen3vl
