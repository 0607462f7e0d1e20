#include "model/vision_encoder_train.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/backward.h"

namespace qwen3vl {
namespace {

constexpr float kLayerNormEps = 1e-6f;  // every nn.LayerNorm of the tower and its mergers: eps=1e-6
constexpr Precision kF32 = Precision::F32;

size_t size_of(int64_t count) { return static_cast<size_t>(count); }

void add_to(float* x, const float* y, size_t count) {
  for (size_t i = 0; i < count; ++i) x[i] += y[i];
}

// Backward of (pos_embed(indices) * weights[:, :, None]).sum(1) (Qwen3VLVisionModel.forward): each patch's
// gradient, times each tap's weight, scattered into the tap's table row (nn.Embedding's backward); the temporal
// slices of a video read the same rows, so their gradients add up there.
void pos_embed_backward(const PosEmbedTaps* taps, int64_t n, int64_t dim, const float* dpos, float* dtable) {
  for (int64_t i = 0; i < n; ++i) {
    const float* g = dpos + i * dim;
    for (int k = 0; k < 4; ++k) {
      float* row = dtable + taps[i].index[k] * dim;
      const float w = taps[i].weight[k];
      for (int64_t d = 0; d < dim; ++d) row[d] += g[d] * w;
    }
  }
}

}  // namespace

VisionEncoderTrainer::VisionEncoderTrainer(const ModelConfig& config, const VisionWeights& weights,
                                           const ops::Context& ctx, bool activation_checkpointing)
    : config_(config.vision_config),
      weights_(weights),
      rotary_(config.vision_config.hidden_size / config.vision_config.num_heads, config.vision_config.rope_theta),
      head_dim_(config.vision_config.hidden_size / config.vision_config.num_heads),
      side_(static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(weights.pos_embed.rows))))),
      ctx_(ctx),
      checkpointing_(activation_checkpointing) {
  check_vision_weights(config, weights);
}

// Qwen3VLVisionBlock.forward, the ops of VisionEncoder::block in the same order (float32, so its roundings are
// no-ops), each intermediate kept in its own buffer:
//   hidden = input + attn.proj(attention(rotary(qkv(norm1(input)))))   per cu_seqlens segment, non-causal
//   out    = hidden + mlp.linear_fc2(act(mlp.linear_fc1(norm2(hidden))))
void VisionEncoderTrainer::block_forward(int64_t index, const VisionActivations& acts, const float* input,
                                         VisionBlockActivations& a, float* out) const {
  const VisionBlockWeights& w = weights_.blocks[index];
  const int64_t d = config_.hidden_size;
  const int64_t heads = config_.num_heads;
  const int64_t n = acts.tokens;
  for (std::vector<float>* buffer : {&a.norm1, &a.q, &a.k, &a.v, &a.attn, &a.norm2}) buffer->resize(size_of(n * d));
  for (std::vector<float>* buffer : {&a.fc1, &a.act}) buffer->resize(size_of(n * config_.intermediate_size));

  ops::layer_norm(ctx_, input, n, d, w.norm1.weight, w.norm1.bias, kLayerNormEps, a.norm1.data(), kF32);
  std::vector<float> qkv(size_of(n * 3 * d));  // [N, 3, heads, head_dim]
  ops::linear(ctx_, a.norm1.data(), n, w.qkv.weight, qkv.data(), kF32, &w.qkv.bias);
  for (int64_t r = 0; r < n; ++r) {  // qkv.reshape(n, 3, heads, -1).permute(1, 0, 2, 3).unbind(0)
    const float* row = qkv.data() + r * 3 * d;
    std::copy(row, row + d, a.q.data() + r * d);
    std::copy(row + d, row + 2 * d, a.k.data() + r * d);
    std::copy(row + 2 * d, row + 3 * d, a.v.data() + r * d);
  }
  // apply_rotary_pos_emb_vision: in float32.
  ops::apply_rotary(ctx_, a.q.data(), n, heads, head_dim_, acts.cos.data(), acts.sin.data(), kF32);
  ops::apply_rotary(ctx_, a.k.data(), n, heads, head_dim_, acts.cos.data(), acts.sin.data(), kF32);
  // self.scaling = head_dim ** -0.5, a Python double, used by torch as a float32 scalar.
  const float scale = static_cast<float>(std::pow(static_cast<double>(head_dim_), -0.5));
  ops::segment_attention(ctx_, a.q.data(), a.k.data(), a.v.data(), acts.cu_seqlens.data(),
                         static_cast<int64_t>(acts.cu_seqlens.size()) - 1,
                         ops::AttentionShape{heads, heads, head_dim_}, scale, a.attn.data(), kF32);
  a.hidden.assign(input, input + n * d);
  ops::linear(ctx_, a.attn.data(), n, w.proj.weight, out, kF32, &w.proj.bias);  // out: scratch here
  ops::add_inplace(ctx_, a.hidden.data(), out, a.hidden.size(), kF32);

  ops::layer_norm(ctx_, a.hidden.data(), n, d, w.norm2.weight, w.norm2.bias, kLayerNormEps, a.norm2.data(), kF32);
  ops::linear(ctx_, a.norm2.data(), n, w.linear_fc1.weight, a.fc1.data(), kF32, &w.linear_fc1.bias);
  if (config_.hidden_act == "gelu")
    ops::gelu_erf(ctx_, a.fc1.data(), a.fc1.size(), a.act.data(), kF32);
  else  // "gelu_pytorch_tanh" (checked at bind time)
    ops::gelu_tanh(ctx_, a.fc1.data(), a.fc1.size(), a.act.data(), kF32);
  std::vector<float> mlp(size_of(n * d));
  ops::linear(ctx_, a.act.data(), n, w.linear_fc2.weight, mlp.data(), kF32, &w.linear_fc2.bias);
  std::copy(a.hidden.begin(), a.hidden.end(), out);
  ops::add_inplace(ctx_, out, mlp.data(), mlp.size(), kF32);
}

// Qwen3VLVisionPatchMerger.forward as VisionEncoder::merge: the main merger normalizes each token over D before
// the m x m shuffle (a reinterpretation of consecutive groups of m^2 tokens), the DeepStack mergers
// (use_postshuffle_norm) over m^2*D after it; then linear_fc1, nn.GELU() (exact erf), linear_fc2.
std::vector<float> VisionEncoderTrainer::merger_forward(const VisionMergerWeights& w, const float* input, int64_t n,
                                                        VisionMergerActivations& a) const {
  const int64_t d = config_.hidden_size;
  const int64_t unit = config_.spatial_merge_size * config_.spatial_merge_size;
  const int64_t merged = n / unit;
  for (std::vector<float>* buffer : {&a.normed, &a.fc1, &a.act}) buffer->resize(size_of(n * d));
  if (w.use_postshuffle_norm)
    ops::layer_norm(ctx_, input, merged, unit * d, w.norm.weight, w.norm.bias, kLayerNormEps, a.normed.data(), kF32);
  else
    ops::layer_norm(ctx_, input, n, d, w.norm.weight, w.norm.bias, kLayerNormEps, a.normed.data(), kF32);
  ops::linear(ctx_, a.normed.data(), merged, w.linear_fc1.weight, a.fc1.data(), kF32, &w.linear_fc1.bias);
  ops::gelu_erf(ctx_, a.fc1.data(), a.fc1.size(), a.act.data(), kF32);
  std::vector<float> out(size_of(merged * config_.out_hidden_size));
  ops::linear(ctx_, a.act.data(), merged, w.linear_fc2.weight, out.data(), kF32, &w.linear_fc2.bias);
  return out;
}

VisionOutput VisionEncoderTrainer::forward(const float* pixel_values, const std::vector<GridTHW>& grids,
                                           VisionActivations& acts) const {
  check_vision_grids(config_, grids);
  const int64_t d = config_.hidden_size;
  const int64_t m = config_.spatial_merge_size;
  const int64_t patch_dim = weights_.patch_embed.weight.cols;
  int64_t n = 0;
  for (const GridTHW& g : grids) n += g.patches();
  acts = VisionActivations();
  acts.grids = grids;
  acts.tokens = n;
  acts.checkpointed = checkpointing_;

  // Qwen3VLVisionPatchEmbed: Conv3d with kernel == stride, a Linear with bias over each flattened patch.
  acts.pixels.assign(pixel_values, pixel_values + n * patch_dim);
  std::vector<float> hidden(size_of(n * d));  // [N, D]
  ops::linear(ctx_, acts.pixels.data(), n, weights_.patch_embed.weight, hidden.data(), kF32,
              &weights_.patch_embed.bias);

  std::vector<PatchPosition> positions;
  for (const GridTHW& g : grids) {
    const auto p = patch_positions(g, m);
    positions.insert(positions.end(), p.begin(), p.end());
    const auto t = pos_embed_taps(g, side_, m);
    acts.taps.insert(acts.taps.end(), t.begin(), t.end());
  }
  std::vector<float> pos(size_of(n * d));  // [N, D]
  interpolate_pos_embed(weights_.pos_embed, acts.taps.data(), n, pos.data(), kF32);
  ops::add_inplace(ctx_, hidden.data(), pos.data(), pos.size(), kF32);

  acts.cos.resize(size_of(n * head_dim_));
  acts.sin.resize(size_of(n * head_dim_));
  rotary_.compute(positions.data(), n, acts.cos.data(), acts.sin.data());
  acts.cu_seqlens = vision_cu_seqlens(grids);

  VisionOutput out;
  out.deepstack.resize(config_.deepstack_visual_indexes.size());
  acts.deepstack.resize(config_.deepstack_visual_indexes.size());
  acts.blocks.resize(size_of(config_.depth));
  VisionBlockActivations recomputable;  // the intermediates a checkpointed block does not keep
  for (int64_t i = 0; i < config_.depth; ++i) {
    VisionBlockActivations& kept = acts.blocks[size_of(i)];
    kept.input = std::move(hidden);
    hidden.assign(kept.input.size(), 0.f);
    block_forward(i, acts, kept.input.data(), checkpointing_ ? recomputable : kept, hidden.data());
    // The block OUTPUT at deepstack_visual_indexes[k] feeds deepstack_merger_list[k].
    for (size_t k = 0; k < config_.deepstack_visual_indexes.size(); ++k)
      if (config_.deepstack_visual_indexes[k] == i)
        out.deepstack[k] = merger_forward(weights_.deepstack_merger_list[k], hidden.data(), n, acts.deepstack[k]);
  }
  out.embeds = merger_forward(weights_.merger, hidden.data(), n, acts.merger);
  acts.output = std::move(hidden);
  return out;
}

void VisionEncoderTrainer::linear_backward(const float* x, int64_t n, const WeightMatrix& w, const float* dy,
                                           float* dx, const ops::LinearGrads& g, VisionBackwardWork& work) const {
  ++work.linear_backward_calls;
  ops::linear_backward(ctx_, x, n, w, dy, dx, /*accumulate_dx=*/false, g);
}

void VisionEncoderTrainer::merger_backward(const VisionMergerWeights& w, const VisionMergerActivations& a,
                                           const float* input, int64_t n, const float* dy, const VisionMergerGrads& g,
                                           float* dh, VisionBackwardWork& work) const {
  // Each step runs only when a trainable weight or the wanted input gradient lies below it.
  const bool need_dnormed = dh || g.norm.any();
  const bool need_dact = need_dnormed || g.linear_fc1.any();
  if (!need_dact && !g.linear_fc2.any()) return;
  ++work.mergers;
  const int64_t d = config_.hidden_size;
  const int64_t unit = config_.spatial_merge_size * config_.spatial_merge_size;
  const int64_t merged = n / unit;
  std::vector<float> d_act(need_dact ? size_of(n * d) : 0);  // [M, m^2 D]
  linear_backward(a.act.data(), merged, w.linear_fc2.weight, dy, need_dact ? d_act.data() : nullptr, g.linear_fc2,
                  work);
  if (!need_dact) return;
  ops::gelu_erf_backward(ctx_, a.fc1.data(), d_act.data(), d_act.size(), d_act.data());
  std::vector<float> d_normed(need_dnormed ? size_of(n * d) : 0);
  linear_backward(a.normed.data(), merged, w.linear_fc1.weight, d_act.data(),
                  need_dnormed ? d_normed.data() : nullptr, g.linear_fc1, work);
  if (!need_dnormed) return;
  std::vector<float> d_input(dh ? size_of(n * d) : 0);  // the shuffle's backward is the same reinterpretation
  const int64_t rows = w.use_postshuffle_norm ? merged : n;
  ops::layer_norm_backward(ctx_, input, rows, n * d / rows, w.norm.weight, w.norm.bias, kLayerNormEps,
                           d_normed.data(), dh ? d_input.data() : nullptr, g.norm.weight, g.norm.bias);
  if (dh) add_to(dh, d_input.data(), d_input.size());
}

// Backward of block_forward. With dy the gradient at `out` (held in dh):
//   MLP:  dh(hidden) = dy + norm2^T(fc1^T(act'(fc2^T dy)))
//   attn: dx = dh + norm1^T(qkv^T(rotary^T(attention^T(proj^T dh))))
void VisionEncoderTrainer::block_backward(int64_t index, const VisionActivations& acts,
                                          const VisionBlockActivations& a, const VisionBlockGrads& g, bool need_dx,
                                          float* dh, VisionBackwardWork& work) const {
  const VisionBlockWeights& w = weights_.blocks[index];
  const int64_t d = config_.hidden_size;
  const int64_t heads = config_.num_heads;
  const int64_t n = acts.tokens;
  const size_t nd = size_of(n * d);
  // Walking down the block, a step is needed when a trainable weight or the wanted input gradient lies below it.
  const bool need_dn1 = need_dx || g.norm1.any();
  const bool need_dqkv = need_dn1 || g.qkv.any();
  const bool need_dhidden = need_dqkv || g.proj.any();
  const bool need_dn2 = need_dhidden || g.norm2.any();
  const bool need_dact = need_dn2 || g.linear_fc1.any();
  std::vector<float> d_tmp(need_dhidden ? nd : 0);  // the layer norms' input gradients

  std::vector<float> d_act(need_dact ? size_of(n * config_.intermediate_size) : 0);  // [N, I]
  linear_backward(a.act.data(), n, w.linear_fc2.weight, dh, need_dact ? d_act.data() : nullptr, g.linear_fc2, work);
  if (!need_dact) return;
  if (config_.hidden_act == "gelu")
    ops::gelu_erf_backward(ctx_, a.fc1.data(), d_act.data(), d_act.size(), d_act.data());
  else
    ops::gelu_tanh_backward(ctx_, a.fc1.data(), d_act.data(), d_act.size(), d_act.data());
  std::vector<float> d_n2(need_dn2 ? nd : 0);
  linear_backward(a.norm2.data(), n, w.linear_fc1.weight, d_act.data(), need_dn2 ? d_n2.data() : nullptr,
                  g.linear_fc1, work);
  if (!need_dn2) return;
  ops::layer_norm_backward(ctx_, a.hidden.data(), n, d, w.norm2.weight, w.norm2.bias, kLayerNormEps, d_n2.data(),
                           need_dhidden ? d_tmp.data() : nullptr, g.norm2.weight, g.norm2.bias);
  if (!need_dhidden) return;
  add_to(dh, d_tmp.data(), nd);  // the residual: d hidden = dy + norm2's input gradient

  std::vector<float> d_attn(need_dqkv ? nd : 0);
  linear_backward(a.attn.data(), n, w.proj.weight, dh, need_dqkv ? d_attn.data() : nullptr, g.proj, work);
  if (!need_dqkv) return;
  std::vector<float> dq(nd), dk(nd), dv(nd);
  const float scale = static_cast<float>(std::pow(static_cast<double>(head_dim_), -0.5));
  ops::attention_backward(ctx_, a.q.data(), a.k.data(), a.v.data(), n, acts.cu_seqlens.data(),
                          static_cast<int64_t>(acts.cu_seqlens.size()) - 1, /*causal=*/false,
                          ops::AttentionShape{heads, heads, head_dim_}, scale, d_attn.data(), dq.data(), dk.data(),
                          dv.data());
  ops::apply_rotary_backward(ctx_, dq.data(), n, heads, head_dim_, acts.cos.data(), acts.sin.data());
  ops::apply_rotary_backward(ctx_, dk.data(), n, heads, head_dim_, acts.cos.data(), acts.sin.data());
  std::vector<float> dqkv(3 * nd);  // [N, 3, heads, head_dim]: the backward of the split
  for (int64_t r = 0; r < n; ++r) {
    float* row = dqkv.data() + r * 3 * d;
    std::copy(dq.data() + r * d, dq.data() + (r + 1) * d, row);
    std::copy(dk.data() + r * d, dk.data() + (r + 1) * d, row + d);
    std::copy(dv.data() + r * d, dv.data() + (r + 1) * d, row + 2 * d);
  }
  std::vector<float>& d_n1 = dq;  // free again
  linear_backward(a.norm1.data(), n, w.qkv.weight, dqkv.data(), need_dn1 ? d_n1.data() : nullptr, g.qkv, work);
  if (!need_dn1) return;
  ops::layer_norm_backward(ctx_, acts.blocks[size_of(index)].input.data(), n, d, w.norm1.weight, w.norm1.bias, kLayerNormEps, d_n1.data(),
                           need_dx ? d_tmp.data() : nullptr, g.norm1.weight, g.norm1.bias);
  if (need_dx) add_to(dh, d_tmp.data(), nd);  // the residual: dx = d hidden + norm1's input gradient
}

VisionBackwardWork VisionEncoderTrainer::backward(const VisionActivations& acts, const float* d_embeds,
                                                  const std::vector<const float*>& d_deepstack,
                                                  const VisionGrads& grads) const {
  const size_t depth = size_of(config_.depth);
  const size_t levels = config_.deepstack_visual_indexes.size();
  if ((!grads.blocks.empty() && grads.blocks.size() != depth) ||
      (!grads.deepstack_merger_list.empty() && grads.deepstack_merger_list.size() != levels) ||
      (!d_deepstack.empty() && d_deepstack.size() != levels) || acts.blocks.size() != depth)
    throw_error("vision encoder backward: gradients, DeepStack gradients or activations do not fit the tower");
  // need_input[i]: the gradient at block i's input is wanted (something below block i trains); block i is
  // differentiated when need_input[i + 1] (it or something below it trains). need_input[depth]: at the tower output.
  std::vector<bool> need_input(depth + 1);
  bool below = grads.patch_embed.any() || grads.pos_embed != nullptr;
  for (size_t i = 0; i <= depth; ++i) {
    need_input[i] = below;
    if (i < depth && !grads.blocks.empty() && grads.blocks[i].any()) below = true;
  }
  const VisionBlockGrads frozen_block;
  const VisionMergerGrads frozen_merger;
  const int64_t n = acts.tokens;
  const size_t nd = size_of(n * config_.hidden_size);

  VisionBackwardWork work;
  std::vector<float> dh(need_input[depth] ? nd : 0);  // [N, D] gradient of the residual stream
  if (d_embeds)
    merger_backward(weights_.merger, acts.merger, acts.output.data(), n, d_embeds, grads.merger,
                    need_input[depth] ? dh.data() : nullptr, work);
  VisionBlockActivations recomputed;
  std::vector<float> recomputed_out;
  for (size_t i = depth; i-- > 0;) {
    // A DeepStack tap reads block i's output: its gradient joins the stream there.
    const float* block_out = i + 1 < depth ? acts.blocks[i + 1].input.data() : acts.output.data();
    for (size_t k = 0; k < levels; ++k) {
      const float* dy = d_deepstack.empty() ? nullptr : d_deepstack[k];
      if (!dy || config_.deepstack_visual_indexes[k] != static_cast<int64_t>(i)) continue;
      merger_backward(weights_.deepstack_merger_list[k], acts.deepstack[k], block_out, n, dy,
                      grads.deepstack_merger_list.empty() ? frozen_merger : grads.deepstack_merger_list[k],
                      need_input[i + 1] ? dh.data() : nullptr, work);
    }
    if (!need_input[i + 1]) continue;  // nothing at or below block i trains (DeepStack mergers further down may)
    const VisionBlockActivations* a = &acts.blocks[i];
    if (acts.checkpointed) {  // GradientCheckpointingLayer: rerun the block from its kept input
      recomputed_out.resize(nd);
      block_forward(static_cast<int64_t>(i), acts, acts.blocks[i].input.data(), recomputed, recomputed_out.data());
      a = &recomputed;
      ++work.recomputed_blocks;
    }
    ++work.blocks;
    block_backward(static_cast<int64_t>(i), acts, *a, grads.blocks.empty() ? frozen_block : grads.blocks[i],
                   need_input[i], dh.data(), work);
  }
  if (!need_input[0]) return work;
  // hidden = patch_embed(pixels) + pos_embeds: both get the stream's gradient; pixels get none.
  if (grads.pos_embed)
    pos_embed_backward(acts.taps.data(), n, config_.hidden_size, dh.data(), grads.pos_embed);
  if (grads.patch_embed.any())
    linear_backward(acts.pixels.data(), n, weights_.patch_embed.weight, dh.data(), nullptr, grads.patch_embed, work);
  return work;
}

}  // namespace qwen3vl
