#include "model/model_trainer.h"

#include <algorithm>
#include <optional>

#include "core/error.h"
#include "model/vision_encoder.h"
#include "model/vision_encoder_train.h"
#include "ops/backward.h"

namespace qwen3vl {
namespace {

size_t size_of(int64_t count) { return static_cast<size_t>(count); }

int64_t merged_tokens(const std::vector<GridTHW>& grids, int64_t merge) {
  int64_t total = 0;
  for (const GridTHW& g : grids) total += g.patches() / (merge * merge);
  return total;
}

}  // namespace

int64_t supervised_tokens(const TrainInputs& inputs) {
  const std::vector<int32_t> targets = shift_labels(inputs.labels, inputs.cu_seqlens);
  return std::count_if(targets.begin(), targets.end(), [](int32_t t) { return t != -100; });
}

// The decoder's input: token embeddings with the tower's features in the placeholder rows.
struct ModelTrainer::Embedded {
  std::vector<float> embeds;                     // [n, hidden]
  std::vector<int64_t> visual_rows;              // image and video placeholder rows, in sequence order
  std::vector<int64_t> feature_rows;             // per visual row: its row of the tower output (images, then videos)
  std::vector<std::vector<float>> deepstack;     // per level: [visual_rows, hidden]
  bool vision_trained = false;
  VisionActivations vision_acts;                 // kept when the tower is differentiated
};

ModelTrainer::ModelTrainer(const ModelConfig& config, const TextWeights& text, const VisionWeights* vision,
                           const ops::Context& ctx, bool checkpoint_layers)
    : config_(config),
      text_(text),
      vision_(vision),
      ctx_(ctx),
      checkpoint_layers_(checkpoint_layers),
      decoder_(config, text, ctx, checkpoint_layers) {}

ModelTrainer::Embedded ModelTrainer::embed(const TrainInputs& inputs, bool keep_vision) const {
  const int64_t n = static_cast<int64_t>(inputs.input_ids.size());
  const int64_t hidden = config_.text_config.hidden_size;
  if (inputs.labels.size() != size_of(n)) throw_error("training batch: ", n, " tokens but ", inputs.labels.size(),
                                                      " labels");
  Embedded e;
  e.embeds.resize(size_of(n * hidden));
  for (int64_t i = 0; i < n; ++i)
    if (inputs.input_ids[size_of(i)] < 0 || inputs.input_ids[size_of(i)] >= config_.text_config.vocab_size)
      throw_error("training batch: token id ", inputs.input_ids[size_of(i)], " is outside the vocabulary");
  ops::embedding(text_.embed_tokens, inputs.input_ids.data(), n, e.embeds.data());

  const int64_t merge = config_.vision_config.spatial_merge_size;
  const int64_t image_tokens = merged_tokens(inputs.image_grids, merge);
  const int64_t video_tokens = merged_tokens(inputs.video_grids, merge);
  int64_t image_cursor = 0, video_cursor = image_tokens;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t id = inputs.input_ids[size_of(i)];
    if (id != config_.image_token_id && id != config_.video_token_id) continue;
    e.visual_rows.push_back(i);
    e.feature_rows.push_back(id == config_.image_token_id ? image_cursor++ : video_cursor++);
  }
  if (image_cursor != image_tokens || video_cursor != image_tokens + video_tokens)
    throw_error("training batch: ", image_cursor, " image and ", video_cursor - image_tokens,
                " video placeholder tokens but the grids give ", image_tokens, " and ", video_tokens);
  if (e.visual_rows.empty()) return e;
  if (!vision_) throw_error("training batch has images or videos but the model has no vision tower");

  // One tower call for all images and videos (attention stays inside each temporal slice, so this equals
  // get_image_features and get_video_features run separately).
  std::vector<GridTHW> grids = inputs.image_grids;
  grids.insert(grids.end(), inputs.video_grids.begin(), inputs.video_grids.end());
  std::vector<float> pixels = inputs.pixel_values;
  pixels.insert(pixels.end(), inputs.pixel_values_videos.begin(), inputs.pixel_values_videos.end());
  VisionOutput tower;
  e.vision_trained = keep_vision;
  if (keep_vision) {
    const VisionEncoderTrainer encoder(config_, *vision_, ctx_, checkpoint_layers_);
    tower = encoder.forward(pixels.data(), grids, e.vision_acts);
  } else {
    const VisionEncoder encoder(config_, *vision_, ctx_);
    tower = encoder.forward(pixels.data(), grids);
  }
  // Qwen3VLModel.forward: inputs_embeds.masked_scatter(mask, features); DeepStack rows in sequence order.
  e.deepstack.assign(tower.deepstack.size(), std::vector<float>(e.visual_rows.size() * size_of(hidden)));
  for (size_t k = 0; k < e.visual_rows.size(); ++k) {
    const int64_t src = e.feature_rows[k];
    std::copy_n(tower.embeds.data() + src * hidden, hidden, e.embeds.data() + e.visual_rows[k] * hidden);
    for (size_t level = 0; level < tower.deepstack.size(); ++level)
      std::copy_n(tower.deepstack[level].data() + src * hidden, hidden, e.deepstack[level].data() + k * hidden);
  }
  return e;
}

LossSum ModelTrainer::forward(const TrainInputs& inputs, std::vector<float>* logits) const {
  Embedded e = embed(inputs, false);
  const DeepstackInjection deepstack{e.visual_rows, &e.deepstack};
  TextActivations acts;
  decoder_.forward(e.embeds.data(), static_cast<int64_t>(inputs.input_ids.size()), inputs.positions,
                   inputs.cu_seqlens, e.visual_rows.empty() ? nullptr : &deepstack, acts);
  if (logits) decoder_.logits(acts, *logits);
  const std::vector<int32_t> targets = shift_labels(inputs.labels, inputs.cu_seqlens);
  return decoder_.lm_head_loss(acts, targets.data(), 1.f, {}, nullptr);
}

LossSum ModelTrainer::forward_backward(const TrainInputs& inputs, float grad_scale, const TextGrads& text_grads,
                                       const VisionGrads* vision_grads) const {
  const int64_t n = static_cast<int64_t>(inputs.input_ids.size());
  const int64_t hidden = config_.text_config.hidden_size;
  const bool train_vision = vision_grads && vision_grads->any();
  Embedded e = embed(inputs, train_vision);
  const DeepstackInjection deepstack{e.visual_rows, &e.deepstack};
  TextActivations acts;
  decoder_.forward(e.embeds.data(), n, inputs.positions, inputs.cu_seqlens,
                   e.visual_rows.empty() ? nullptr : &deepstack, acts);

  const std::vector<int32_t> targets = shift_labels(inputs.labels, inputs.cu_seqlens);
  std::vector<float> d_normed(size_of(n * hidden));
  const LossSum loss = decoder_.lm_head_loss(acts, targets.data(), grad_scale, text_grads.lm_head, d_normed.data());

  const bool want_input_grad = text_grads.embed_tokens || e.vision_trained;
  std::vector<float> d_embeds(want_input_grad ? size_of(n * hidden) : 0);
  std::vector<std::vector<float>> d_deepstack;
  decoder_.backward(acts, d_normed.data(), text_grads, want_input_grad ? d_embeds.data() : nullptr,
                    e.vision_trained ? &d_deepstack : nullptr);

  if (text_grads.embed_tokens) {  // placeholder rows took the tower's features: no gradient to their embedding
    std::vector<int32_t> ids = inputs.input_ids;
    for (int64_t row : e.visual_rows) ids[size_of(row)] = -1;
    const std::optional<int64_t>& pad = config_.text_config.pad_token_id;
    ops::embedding_backward(ids.data(), n, d_embeds.data(), hidden, text_grads.embed_tokens, pad ? *pad : -1);
  }
  if (!e.vision_trained) return loss;

  // The gradients of the tower's outputs, gathered back from the placeholder rows to the tower's row order.
  const int64_t tower_rows = static_cast<int64_t>(e.feature_rows.size());
  std::vector<float> d_tower(size_of(tower_rows * hidden));
  std::vector<std::vector<float>> d_tower_deepstack(d_deepstack.size(), std::vector<float>(d_tower.size()));
  for (size_t k = 0; k < e.visual_rows.size(); ++k) {
    const int64_t dst = e.feature_rows[k];
    std::copy_n(d_embeds.data() + e.visual_rows[k] * hidden, hidden, d_tower.data() + dst * hidden);
    for (size_t level = 0; level < d_deepstack.size(); ++level)
      std::copy_n(d_deepstack[level].data() + k * hidden, hidden, d_tower_deepstack[level].data() + dst * hidden);
  }
  std::vector<const float*> d_levels;
  for (const std::vector<float>& level : d_tower_deepstack) d_levels.push_back(level.data());
  const VisionEncoderTrainer encoder(config_, *vision_, ctx_, checkpoint_layers_);
  encoder.backward(e.vision_acts, d_tower.data(), d_levels, *vision_grads);
  return loss;
}

}  // namespace qwen3vl
