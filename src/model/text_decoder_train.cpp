#include "model/text_decoder_train.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/backward.h"

namespace qwen3vl {
namespace {

constexpr int32_t kIgnoreIndex = -100;  // transformers' ForCausalLMLoss ignore_index
constexpr int64_t kLossChunkRows = 128;  // supervised rows per lm_head + cross-entropy chunk

size_t size_of(int64_t count) { return static_cast<size_t>(count); }

void add_to(std::vector<float>& dst, const std::vector<float>& src) {
  for (size_t i = 0; i < dst.size(); ++i) dst[i] += src[i];
}

}  // namespace

void TextLayerActivations::release_intermediates() {
  for (std::vector<float>* v : {&normed1, &q_proj, &k_proj, &q, &k, &v, &attn, &mid, &normed2, &gate, &up, &act})
    *v = std::vector<float>();
  moe.clear();
}

std::vector<int32_t> shift_labels(const std::vector<int32_t>& labels, const std::vector<int64_t>& cu_seqlens) {
  std::vector<int32_t> targets(labels.size(), kIgnoreIndex);
  for (size_t s = 0; s + 1 < cu_seqlens.size(); ++s)
    for (int64_t i = cu_seqlens[s]; i + 1 < cu_seqlens[s + 1]; ++i) targets[size_of(i)] = labels[size_of(i + 1)];
  return targets;
}

TextDecoderTrainer::TextDecoderTrainer(const ModelConfig& config, const TextWeights& weights, const ops::Context& ctx,
                                       bool checkpoint_layers)
    : config_(config.text_config),
      weights_(weights),
      rotary_(config.text_config),
      ctx_(ctx),
      checkpoint_layers_(checkpoint_layers) {}

// Qwen3VLTextAttention.forward on a packed sequence: q/k RMSNorm per head, rotary, attention causal inside each
// sample (flash_attn_varlen_func(causal=True) in qwen-vl-finetune's trainer.py; eager attention with the
// block-diagonal causal mask gives the same), no KV cache.
void TextDecoderTrainer::attention_forward(int64_t layer, const TextActivations& acts, TextLayerActivations& a) const {
  const int64_t n = acts.n, hd = config_.head_dim;
  const int64_t heads = config_.num_attention_heads, kv_heads = config_.num_key_value_heads;
  const TextLayerWeights& w = weights_.layers[size_of(layer)];
  a.q_proj.resize(size_of(n * heads * hd));
  a.k_proj.resize(size_of(n * kv_heads * hd));
  a.v.resize(size_of(n * kv_heads * hd));
  const ops::LinearOutput qkv[] = {{&w.q_proj, a.q_proj.data()},  // [n, heads*hd]
                                   {&w.k_proj, a.k_proj.data()},  // [n, kv_heads*hd]
                                   {&w.v_proj, a.v.data()}};      // [n, kv_heads*hd]
  ops::linear_group(ctx_, a.normed1.data(), n, qkv, 3, Precision::F32);
  const float eps = static_cast<float>(config_.rms_norm_eps);
  a.q.resize(a.q_proj.size());
  a.k.resize(a.k_proj.size());
  ops::rms_norm(ctx_, a.q_proj.data(), n * heads, hd, w.q_norm, eps, a.q.data(), Precision::F32);
  ops::rms_norm(ctx_, a.k_proj.data(), n * kv_heads, hd, w.k_norm, eps, a.k.data(), Precision::F32);
  ops::apply_rotary(ctx_, a.q.data(), n, heads, hd, acts.cos.data(), acts.sin.data(), Precision::F32);
  ops::apply_rotary(ctx_, a.k.data(), n, kv_heads, hd, acts.cos.data(), acts.sin.data(), Precision::F32);

  const ops::AttentionShape shape{heads, kv_heads, hd};
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));  // head_dim ** -0.5
  a.attn.resize(size_of(n * heads * hd));
  for (size_t s = 0; s + 1 < acts.cu_seqlens.size(); ++s) {
    const int64_t r0 = acts.cu_seqlens[s], len = acts.cu_seqlens[s + 1] - r0;
    ops::causal_attention(ctx_, a.q.data() + r0 * heads * hd, len, 0, a.k.data() + r0 * kv_heads * hd,
                          a.v.data() + r0 * kv_heads * hd, shape, scale, a.attn.data() + r0 * heads * hd,
                          Precision::F32, DType::F32);
  }
}

void TextDecoderTrainer::layer_forward(int64_t layer, const TextActivations& acts, TextLayerActivations& a,
                                       std::vector<float>& out) const {
  const TextLayerWeights& w = weights_.layers[size_of(layer)];
  const int64_t n = acts.n, hidden = config_.hidden_size;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  a.normed1.resize(size_of(n * hidden));
  ops::rms_norm(ctx_, a.input.data(), n, hidden, w.input_layernorm, eps, a.normed1.data(), Precision::F32);
  attention_forward(layer, acts, a);
  a.mid.resize(size_of(n * hidden));
  ops::linear(ctx_, a.attn.data(), n, w.o_proj, a.mid.data(), Precision::F32);  // o_proj [n, hidden]
  for (size_t i = 0; i < a.mid.size(); ++i) a.mid[i] += a.input[i];            // residual + attention
  a.normed2.resize(size_of(n * hidden));
  ops::rms_norm(ctx_, a.mid.data(), n, hidden, w.post_attention_layernorm, eps, a.normed2.data(), Precision::F32);

  out.resize(size_of(n * hidden));
  if (!w.moe.empty()) {
    moe_train_forward(w.moe, config_, a.normed2.data(), n, out.data(), a.moe, ctx_);
  } else {  // Qwen3VLTextMLP: down_proj(silu(gate_proj(x)) * up_proj(x))
    const int64_t inter = config_.intermediate_size;
    a.gate.resize(size_of(n * inter));
    a.up.resize(size_of(n * inter));
    a.act.resize(size_of(n * inter));
    const ops::LinearOutput gate_up[] = {{&w.gate_proj, a.gate.data()}, {&w.up_proj, a.up.data()}};
    ops::linear_group(ctx_, a.normed2.data(), n, gate_up, 2, Precision::F32);
    ops::silu_mul(ctx_, a.gate.data(), a.up.data(), a.act.size(), a.act.data(), Precision::F32);
    ops::linear(ctx_, a.act.data(), n, w.down_proj, out.data(), Precision::F32);
  }
  for (size_t i = 0; i < out.size(); ++i) out[i] += a.mid[i];  // residual + mlp
}

void TextDecoderTrainer::forward(const float* inputs_embeds, int64_t n, const MropePositions& positions,
                                 const std::vector<int64_t>& cu_seqlens, const DeepstackInjection* deepstack,
                                 TextActivations& acts) const {
  const int64_t hidden = config_.hidden_size;
  if (positions.size() != n) throw_error("decoder: ", n, " tokens but ", positions.size(), " positions");
  if (cu_seqlens.size() < 2 || cu_seqlens.front() != 0 || cu_seqlens.back() != n ||
      !std::is_sorted(cu_seqlens.begin(), cu_seqlens.end()))
    throw_error("decoder: sample boundaries (cu_seqlens) must rise from 0 to the ", n, " tokens");
  acts.n = n;
  acts.cu_seqlens = cu_seqlens;
  acts.cos.resize(size_of(n * config_.head_dim));
  acts.sin.resize(size_of(n * config_.head_dim));
  rotary_.compute(positions, acts.cos.data(), acts.sin.data(), Precision::F32);
  acts.deepstack_rows = deepstack ? deepstack->rows : std::vector<int64_t>();
  acts.deepstack_levels = deepstack ? static_cast<int64_t>(deepstack->features->size()) : 0;

  const int64_t layers = config_.num_hidden_layers;
  acts.layers.resize(size_of(layers));
  std::vector<float> hidden_states(inputs_embeds, inputs_embeds + n * hidden);
  for (int64_t l = 0; l < layers; ++l) {
    TextLayerActivations& a = acts.layers[size_of(l)];
    a.input = std::move(hidden_states);
    layer_forward(l, acts, a, hidden_states);
    if (checkpoint_layers_) a.release_intermediates();
    // Qwen3VLTextModel._deepstack_process: hidden_states[visual_pos_masks] += deepstack_visual_embeds[l].
    if (deepstack && l < static_cast<int64_t>(deepstack->features->size())) {
      const std::vector<float>& level = (*deepstack->features)[size_of(l)];
      for (size_t r = 0; r < deepstack->rows.size(); ++r)
        for (int64_t d = 0; d < hidden; ++d)
          hidden_states[size_of(deepstack->rows[r] * hidden + d)] += level[r * size_of(hidden) + size_of(d)];
    }
  }
  acts.final_input = std::move(hidden_states);
  acts.normed.resize(acts.final_input.size());
  ops::rms_norm(ctx_, acts.final_input.data(), n, hidden, weights_.norm, static_cast<float>(config_.rms_norm_eps),
                acts.normed.data(), Precision::F32);
}

// ForCausalLMLoss (transformers loss/loss_utils.py): logits.float(), cross_entropy(ignore_index=-100) over the
// shifted labels. Computed in chunks of supervised rows so the [rows, vocab] logits never exist whole.
LossSum TextDecoderTrainer::lm_head_loss(const TextActivations& acts, const int32_t* targets, float grad_scale,
                                         const ops::LinearGrads& lm_head_grads, float* d_normed) const {
  const int64_t hidden = config_.hidden_size, vocab = config_.vocab_size;
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < acts.n; ++i)
    if (targets[i] != kIgnoreIndex) rows.push_back(i);
  if (d_normed) std::fill(d_normed, d_normed + acts.n * hidden, 0.f);

  LossSum loss;
  std::vector<float> x, logits, dx;
  std::vector<int32_t> chunk_targets;
  for (size_t c0 = 0; c0 < rows.size(); c0 += kLossChunkRows) {
    const int64_t m = static_cast<int64_t>(std::min<size_t>(kLossChunkRows, rows.size() - c0));
    x.resize(size_of(m * hidden));
    chunk_targets.resize(size_of(m));
    for (int64_t i = 0; i < m; ++i) {
      const int64_t row = rows[c0 + size_of(i)];
      std::copy_n(acts.normed.data() + row * hidden, hidden, x.data() + i * hidden);
      chunk_targets[size_of(i)] = targets[row];
    }
    logits.resize(size_of(m * vocab));
    ops::linear(ctx_, x.data(), m, weights_.lm_head, logits.data(), Precision::F32);  // [m, vocab]
    int64_t count = 0;
    loss.sum += ops::cross_entropy(ctx_, logits.data(), m, vocab, chunk_targets.data(), grad_scale,
                                   d_normed ? logits.data() : nullptr, &count);
    loss.count += count;
    if (!d_normed) continue;
    dx.resize(size_of(m * hidden));
    ops::linear_backward(ctx_, x.data(), m, weights_.lm_head, logits.data(), dx.data(), false, lm_head_grads);
    for (int64_t i = 0; i < m; ++i)
      std::copy_n(dx.data() + i * hidden, hidden, d_normed + rows[c0 + size_of(i)] * hidden);
  }
  return loss;
}

void TextDecoderTrainer::logits(const TextActivations& acts, std::vector<float>& out) const {
  out.resize(size_of(acts.n * config_.vocab_size));
  ops::linear(ctx_, acts.normed.data(), acts.n, weights_.lm_head, out.data(), Precision::F32);
}

// Backward of one decoder layer (HF Qwen3VLTextDecoderLayer):
//   mid = input + o_proj(attention(rotary(q_norm(q_proj(n1))), rotary(k_norm(k_proj(n1))), v_proj(n1))),
//   n1 = input_layernorm(input); out = mid + mlp(post_attention_layernorm(mid)).
void TextDecoderTrainer::layer_backward(int64_t layer, const TextActivations& acts, const TextLayerActivations& a,
                                        const TextLayerGrads& g, std::vector<float>& d_hidden) const {
  const TextLayerWeights& w = weights_.layers[size_of(layer)];
  const int64_t n = acts.n, hidden = config_.hidden_size, hd = config_.head_dim;
  const int64_t heads = config_.num_attention_heads, kv_heads = config_.num_key_value_heads;
  const float eps = static_cast<float>(config_.rms_norm_eps);

  // MLP branch: d_hidden = d out = d mid (residual) + d(mlp(normed2)) through post_attention_layernorm.
  std::vector<float> d_normed2(size_of(n * hidden));
  if (!w.moe.empty()) {
    moe_train_backward(w.moe, config_, a.normed2.data(), n, a.moe, d_hidden.data(), d_normed2.data(), g.moe, ctx_);
  } else {
    std::vector<float> d_act(a.act.size()), d_gate(a.act.size()), d_up(a.act.size());
    ops::linear_backward(ctx_, a.act.data(), n, w.down_proj, d_hidden.data(), d_act.data(), false, g.down_proj);
    ops::silu_mul_backward(ctx_, a.gate.data(), a.up.data(), d_act.data(), d_act.size(), d_gate.data(), d_up.data());
    ops::linear_backward(ctx_, a.normed2.data(), n, w.gate_proj, d_gate.data(), d_normed2.data(), false, g.gate_proj);
    ops::linear_backward(ctx_, a.normed2.data(), n, w.up_proj, d_up.data(), d_normed2.data(), true, g.up_proj);
  }
  std::vector<float> d_branch(size_of(n * hidden));
  ops::rms_norm_backward(ctx_, a.mid.data(), n, hidden, w.post_attention_layernorm, eps, d_normed2.data(),
                         d_branch.data(), g.post_attention_layernorm.weight);
  add_to(d_hidden, d_branch);  // d mid

  // Attention branch.
  std::vector<float> d_attn(a.attn.size());
  ops::linear_backward(ctx_, a.attn.data(), n, w.o_proj, d_hidden.data(), d_attn.data(), false, g.o_proj);
  std::vector<float> dq(a.q.size()), dk(a.k.size()), dv(a.v.size());
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  ops::attention_backward(ctx_, a.q.data(), a.k.data(), a.v.data(), n, acts.cu_seqlens.data(),
                          static_cast<int64_t>(acts.cu_seqlens.size()) - 1, true,
                          ops::AttentionShape{heads, kv_heads, hd}, scale, d_attn.data(), dq.data(), dk.data(),
                          dv.data());
  ops::apply_rotary_backward(ctx_, dq.data(), n, heads, hd, acts.cos.data(), acts.sin.data());
  ops::apply_rotary_backward(ctx_, dk.data(), n, kv_heads, hd, acts.cos.data(), acts.sin.data());
  std::vector<float> dq_proj(dq.size()), dk_proj(dk.size());
  ops::rms_norm_backward(ctx_, a.q_proj.data(), n * heads, hd, w.q_norm, eps, dq.data(), dq_proj.data(),
                         g.q_norm.weight);
  ops::rms_norm_backward(ctx_, a.k_proj.data(), n * kv_heads, hd, w.k_norm, eps, dk.data(), dk_proj.data(),
                         g.k_norm.weight);
  std::vector<float> d_normed1(size_of(n * hidden));
  ops::linear_backward(ctx_, a.normed1.data(), n, w.q_proj, dq_proj.data(), d_normed1.data(), false, g.q_proj);
  ops::linear_backward(ctx_, a.normed1.data(), n, w.k_proj, dk_proj.data(), d_normed1.data(), true, g.k_proj);
  ops::linear_backward(ctx_, a.normed1.data(), n, w.v_proj, dv.data(), d_normed1.data(), true, g.v_proj);
  ops::rms_norm_backward(ctx_, a.input.data(), n, hidden, w.input_layernorm, eps, d_normed1.data(), d_branch.data(),
                         g.input_layernorm.weight);
  add_to(d_hidden, d_branch);  // d input
}

void TextDecoderTrainer::backward(TextActivations& acts, const float* d_normed, const TextGrads& grads,
                                  float* d_inputs_embeds, std::vector<std::vector<float>>* d_deepstack) const {
  const int64_t n = acts.n, hidden = config_.hidden_size;
  const int64_t layers = config_.num_hidden_layers;
  // The lowest layer the backward must reach: 0 when the input gradient (embeddings, vision) is wanted, else the
  // lowest layer with a trainable weight. Nothing below it is differentiated.
  int64_t lowest = layers;
  if (d_inputs_embeds || d_deepstack) {
    lowest = 0;
  } else {
    for (int64_t l = 0; l < layers && lowest == layers; ++l)
      if (grads.layers.size() > size_of(l) && grads.layers[size_of(l)].any()) lowest = l;
  }

  std::vector<float> d_hidden(size_of(n * hidden));
  ops::rms_norm_backward(ctx_, acts.final_input.data(), n, hidden, weights_.norm,
                         static_cast<float>(config_.rms_norm_eps), d_normed, d_hidden.data(), grads.norm.weight);
  if (d_deepstack) d_deepstack->clear();
  const TextLayerGrads frozen;
  std::vector<float> recomputed_output;
  for (int64_t l = layers - 1; l >= lowest; --l) {
    // d_hidden is d(output of layer l) = d(input of layer l + 1); the DeepStack features added after layer l
    // receive it at their rows.
    if (d_deepstack && l < acts.deepstack_levels) {
      if (d_deepstack->size() < size_of(l + 1)) d_deepstack->resize(size_of(l + 1));
      std::vector<float>& level = (*d_deepstack)[size_of(l)];
      level.resize(acts.deepstack_rows.size() * size_of(hidden));
      for (size_t r = 0; r < acts.deepstack_rows.size(); ++r)
        std::copy_n(d_hidden.data() + acts.deepstack_rows[r] * hidden, hidden, level.data() + r * size_of(hidden));
    }
    TextLayerActivations& a = acts.layers[size_of(l)];
    if (checkpoint_layers_) layer_forward(l, acts, a, recomputed_output);
    const TextLayerGrads& g = grads.layers.size() > size_of(l) ? grads.layers[size_of(l)] : frozen;
    layer_backward(l, acts, a, g, d_hidden);
    if (checkpoint_layers_) a.release_intermediates();
  }
  if (d_inputs_embeds) std::copy(d_hidden.begin(), d_hidden.end(), d_inputs_embeds);
}

}  // namespace qwen3vl
