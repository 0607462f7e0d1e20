#include "model/vision_encoder.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace qwen3vl {
namespace {

constexpr float kLayerNormEps = 1e-6f;  // every nn.LayerNorm of the tower and its mergers: eps=1e-6

}  // namespace

void check_vision_weights(const ModelConfig& config, const VisionWeights& weights) {
  const VisionConfig& v = config.vision_config;
  if (static_cast<int64_t>(weights.blocks.size()) != v.depth ||
      weights.deepstack_merger_list.size() != v.deepstack_visual_indexes.size())
    throw_error(config.path, ": vision weights were bound for a different vision_config");
}

void check_vision_grids(const VisionConfig& config, const std::vector<GridTHW>& grids) {
  const int64_t m = config.spatial_merge_size;
  for (size_t i = 0; i < grids.size(); ++i) {
    const GridTHW& g = grids[i];
    if (g.t < 1 || g.h < 1 || g.w < 1 || g.h % m != 0 || g.w % m != 0)
      throw_error("vision encoder: grid_thw ", i, " = (", g.t, ", ", g.h, ", ", g.w,
                  ") must be positive with h and w multiples of spatial_merge_size ", m);
  }
}

VisionEncoder::VisionEncoder(const ModelConfig& config, const VisionWeights& weights, const ops::Context& ctx)
    : config_(config.vision_config),
      weights_(weights),
      rotary_(config.vision_config.hidden_size / config.vision_config.num_heads, config.vision_config.rope_theta),
      head_dim_(config.vision_config.hidden_size / config.vision_config.num_heads),
      side_(static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(weights.pos_embed.rows))))),
      // bf16 checkpoints run as transformers runs them by default (dtype "auto": bf16 activations); f16 and f32
      // checkpoints run in float.
      precision_(weights.dtype == DType::BF16 ? Precision::BF16 : Precision::F32),
      ctx_(ctx) {
  check_vision_weights(config, weights);
}

// Qwen3VLVisionBlock.forward:
//   h = h + attn.proj(attention(rotary(qkv(norm1(h)))))   per cu_seqlens segment, non-causal
//   h = h + mlp.linear_fc2(act(mlp.linear_fc1(norm2(h))))
void VisionEncoder::block(int64_t index, std::vector<float>& hidden, const std::vector<int64_t>& cu_seqlens,
                          const std::vector<float>& cos, const std::vector<float>& sin, BlockScratch& scratch) const {
  const VisionBlockWeights& w = weights_.blocks[index];
  const int64_t d = config_.hidden_size;
  const int64_t heads = config_.num_heads;
  const int64_t n = static_cast<int64_t>(hidden.size()) / d;
  const auto size = [](int64_t count) { return static_cast<size_t>(count); };
  // Every element of these is written before it is read.
  std::vector<float>& normed = scratch.normed;  // [n, D]
  std::vector<float>& qkv = scratch.qkv;        // [n, 3D]
  std::vector<float>& q = scratch.q;            // [n, D]
  std::vector<float>& k = scratch.k;            // [n, D]
  std::vector<float>& v = scratch.v;            // [n, D]
  for (std::vector<float>* buffer : {&normed, &q, &k, &v}) buffer->resize(size(n * d));
  qkv.resize(size(n * 3 * d));

  ops::layer_norm(ctx_, hidden.data(), n, d, w.norm1.weight, w.norm1.bias, kLayerNormEps, normed.data(), precision_);
  ops::linear(ctx_, normed.data(), n, w.qkv.weight, qkv.data(), precision_, &w.qkv.bias);  // [n, 3, heads, head_dim]
  for (int64_t r = 0; r < n; ++r) {  // qkv.reshape(n, 3, heads, -1).permute(1, 0, 2, 3).unbind(0)
    const float* row = qkv.data() + r * 3 * d;
    std::copy(row, row + d, q.data() + r * d);
    std::copy(row + d, row + 2 * d, k.data() + r * d);
    std::copy(row + 2 * d, row + 3 * d, v.data() + r * d);
  }
  // apply_rotary_pos_emb_vision: q and k upcast to float32, (x * cos) + (rotate_half(x) * sin) in float32 with float32
  // cos/sin, and only the result cast back to the activation dtype (unlike the text rotary, which rounds each
  // product in bf16).
  for (std::vector<float>* x : {&q, &k}) {
    ops::apply_rotary(ctx_, x->data(), n, heads, head_dim_, cos.data(), sin.data(), Precision::F32);
    for (float& value : *x) value = round_to(precision_, value);
  }
  // self.scaling = head_dim ** -0.5, a Python double, used by torch as a float32 scalar.
  const float scale = static_cast<float>(std::pow(static_cast<double>(head_dim_), -0.5));
  std::vector<float>& attn = normed;  // [n, D]
  ops::segment_attention(ctx_, q.data(), k.data(), v.data(), cu_seqlens.data(),
                         static_cast<int64_t>(cu_seqlens.size()) - 1, ops::AttentionShape{heads, heads, head_dim_},
                         scale, attn.data(), precision_);
  std::vector<float>& proj = q;  // [n, D]
  ops::linear(ctx_, attn.data(), n, w.proj.weight, proj.data(), precision_, &w.proj.bias);
  ops::add_inplace(ctx_, hidden.data(), proj.data(), proj.size(), precision_);

  ops::layer_norm(ctx_, hidden.data(), n, d, w.norm2.weight, w.norm2.bias, kLayerNormEps, normed.data(), precision_);
  std::vector<float>& mlp = scratch.mlp;  // [n, I]
  mlp.resize(size(n * config_.intermediate_size));
  ops::linear(ctx_, normed.data(), n, w.linear_fc1.weight, mlp.data(), precision_, &w.linear_fc1.bias);
  if (config_.hidden_act == "gelu")
    ops::gelu_erf(ctx_, mlp.data(), mlp.size(), mlp.data(), precision_);
  else  // "gelu_pytorch_tanh" (checked at bind time)
    ops::gelu_tanh(ctx_, mlp.data(), mlp.size(), mlp.data(), precision_);
  ops::linear(ctx_, mlp.data(), n, w.linear_fc2.weight, proj.data(), precision_, &w.linear_fc2.bias);
  ops::add_inplace(ctx_, hidden.data(), proj.data(), proj.size(), precision_);
}

// Qwen3VLVisionPatchMerger.forward. Consecutive groups of m*m tokens are one merged block (the processor's order),
// so the shuffle [n, D] -> [n/m^2, m^2*D] is a reinterpretation of the same buffer. The main merger normalizes
// each token over D BEFORE it; the DeepStack mergers (use_postshuffle_norm) normalize over m^2*D AFTER it.
// The activation is nn.GELU() (exact erf), not the blocks' hidden_act.
std::vector<float> VisionEncoder::merge(const VisionMergerWeights& w, const std::vector<float>& hidden) const {
  const int64_t d = config_.hidden_size;
  const int64_t unit = config_.spatial_merge_size * config_.spatial_merge_size;
  const int64_t merged_dim = unit * d;
  const int64_t n = static_cast<int64_t>(hidden.size()) / d;
  const int64_t merged = n / unit;
  std::vector<float> normed(hidden.size()), fc1(hidden.size());
  if (w.use_postshuffle_norm)
    ops::layer_norm(ctx_, hidden.data(), merged, merged_dim, w.norm.weight, w.norm.bias, kLayerNormEps, normed.data(),
                    precision_);
  else
    ops::layer_norm(ctx_, hidden.data(), n, d, w.norm.weight, w.norm.bias, kLayerNormEps, normed.data(), precision_);
  ops::linear(ctx_, normed.data(), merged, w.linear_fc1.weight, fc1.data(), precision_, &w.linear_fc1.bias);
  ops::gelu_erf(ctx_, fc1.data(), fc1.size(), fc1.data(), precision_);
  std::vector<float> out(static_cast<size_t>(merged * config_.out_hidden_size));
  ops::linear(ctx_, fc1.data(), merged, w.linear_fc2.weight, out.data(), precision_, &w.linear_fc2.bias);
  return out;
}

VisionOutput VisionEncoder::forward(const float* pixel_values, const std::vector<GridTHW>& grids,
                                    const TensorHook& hook) const {
  check_vision_grids(config_, grids);
  const int64_t d = config_.hidden_size;
  const int64_t m = config_.spatial_merge_size;
  const int64_t patch_dim = weights_.patch_embed.weight.cols;
  int64_t n = 0;
  for (const GridTHW& g : grids) n += g.patches();

  // Qwen3VLVisionPatchEmbed: pixel_values.to(proj.weight.dtype), then Conv3d with kernel == stride, which is a
  // Linear with bias over each row of patch_dim values (the kernel's (c, t, y, x) order is the row's order).
  std::vector<float> pixels(pixel_values, pixel_values + n * patch_dim);
  for (float& value : pixels) value = round_to(precision_, value);
  std::vector<float> hidden(static_cast<size_t>(n * d));  // [n, D]
  ops::linear(ctx_, pixels.data(), n, weights_.patch_embed.weight, hidden.data(), precision_,
              &weights_.patch_embed.bias);
  pixels = std::vector<float>();
  if (hook) hook("patch_embed", hidden.data(), n, d);

  // Learned position embedding resampled to each grid, and the ViT rotary angles, per patch in processor order.
  std::vector<PatchPosition> positions;
  std::vector<PosEmbedTaps> taps;
  for (const GridTHW& g : grids) {
    const auto p = patch_positions(g, m);
    positions.insert(positions.end(), p.begin(), p.end());
    const auto t = pos_embed_taps(g, side_, m);
    taps.insert(taps.end(), t.begin(), t.end());
  }
  std::vector<float> pos(static_cast<size_t>(n * d));  // [n, D]
  interpolate_pos_embed(weights_.pos_embed, taps.data(), n, pos.data(), precision_);
  if (hook) hook("pos_embed", pos.data(), n, d);
  ops::add_inplace(ctx_, hidden.data(), pos.data(), pos.size(), precision_);  // hidden + pos_embeds.to(hidden.dtype)
  pos = std::vector<float>();

  std::vector<float> cos(static_cast<size_t>(n * head_dim_)), sin(static_cast<size_t>(n * head_dim_));
  rotary_.compute(positions.data(), n, cos.data(), sin.data());
  if (hook) {
    hook("rotary.cos", cos.data(), n, head_dim_);
    hook("rotary.sin", sin.data(), n, head_dim_);
  }
  const std::vector<int64_t> cu_seqlens = vision_cu_seqlens(grids);

  VisionOutput out;
  out.deepstack.resize(config_.deepstack_visual_indexes.size());
  const int64_t merged = n / (m * m);
  BlockScratch scratch;
  for (int64_t i = 0; i < config_.depth; ++i) {
    block(i, hidden, cu_seqlens, cos, sin, scratch);
    if (hook) hook("blocks." + std::to_string(i), hidden.data(), n, d);
    // The block OUTPUT at deepstack_visual_indexes[k] feeds deepstack_merger_list[k].
    for (size_t k = 0; k < config_.deepstack_visual_indexes.size(); ++k) {
      if (config_.deepstack_visual_indexes[k] != i) continue;
      out.deepstack[k] = merge(weights_.deepstack_merger_list[k], hidden);
      if (hook) hook("deepstack." + std::to_string(k), out.deepstack[k].data(), merged, config_.out_hidden_size);
    }
  }
  out.embeds = merge(weights_.merger, hidden);
  if (hook) hook("merger", out.embeds.data(), merged, config_.out_hidden_size);
  return out;
}

}  // namespace qwen3vl
