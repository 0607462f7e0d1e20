#include "model/text_decoder.h"

#include <cmath>

#include "core/error.h"

namespace qwen3vl {

TextDecoder::TextDecoder(const ModelConfig& config, const TextWeights& weights, const ops::Context& ctx)
    : config_(config.text_config),
      weights_(weights),
      rotary_(config.text_config),
      // bf16 checkpoints run as transformers runs them by default (dtype "auto" = bf16 activations).
      precision_(weights.dtype == DType::BF16 ? Precision::BF16 : Precision::F32),
      ctx_(ctx) {}

KVCache TextDecoder::make_cache(int64_t capacity) const {
  return KVCache(config_.num_hidden_layers, capacity, config_.num_key_value_heads, config_.head_dim,
                 precision_ == Precision::BF16 ? DType::BF16 : DType::F32);
}

void TextDecoder::embed(const int32_t* ids, int64_t n, float* out) const {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= config_.vocab_size)
      throw_error("token id ", ids[i], " is outside the vocabulary of ", config_.vocab_size);
  ops::embedding(weights_.embed_tokens, ids, n, out);
}

// Qwen3VLTextAttention.forward: q/k RMSNorm per head before RoPE, GQA, causal softmax, o_proj.
// Reads work.normed, work.cos/sin; leaves the o_proj output in work.proj.
void TextDecoder::attention_block(int64_t layer, int64_t n, KVCache& cache, DecoderWorkspace& work) const {
  const TextLayerWeights& w = weights_.layers[layer];
  const int64_t hd = config_.head_dim;
  const int64_t n_heads = config_.num_attention_heads;
  const int64_t n_kv = config_.num_key_value_heads;
  const int64_t past = cache.length();

  const ops::LinearOutput qkv[] = {{&w.q_proj, work.q.data()},   // [n, n_heads*hd]
                                   {&w.k_proj, work.k.data()},   // [n, n_kv*hd]
                                   {&w.v_proj, work.v.data()}};  // [n, n_kv*hd]
  ops::linear_group(ctx_, work.normed.data(), n, qkv, 3, precision_);
  const float eps = static_cast<float>(config_.rms_norm_eps);
  ops::rms_norm(ctx_, work.q.data(), n * n_heads, hd, w.q_norm, eps, work.q.data(), precision_);
  ops::rms_norm(ctx_, work.k.data(), n * n_kv, hd, w.k_norm, eps, work.k.data(), precision_);
  ops::apply_rotary(ctx_, work.q.data(), n, n_heads, hd, work.cos.data(), work.sin.data(), precision_);
  ops::apply_rotary(ctx_, work.k.data(), n, n_kv, hd, work.cos.data(), work.sin.data(), precision_);

  cache.write(layer, past, n, work.k.data(), work.v.data());

  const ops::AttentionShape shape{n_heads, n_kv, hd};
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));  // head_dim ** -0.5
  ops::causal_attention(ctx_, work.q.data(), n, past, cache.keys(layer), cache.values(layer), shape, scale,
                        work.attn.data(), precision_, cache.dtype());  // [n, n_heads*hd]
  ops::linear(ctx_, work.attn.data(), n, w.o_proj, work.proj.data(), precision_);  // [n, hidden]
}

// Qwen3VLTextMLP: down_proj(silu(gate_proj(x)) * up_proj(x)); MoE layers: the sparse block of model/moe.h.
void TextDecoder::mlp_block(int64_t layer, int64_t n, DecoderWorkspace& work, const TensorHook& hook) const {
  const TextLayerWeights& w = weights_.layers[layer];
  if (!w.moe.empty()) {
    sparse_moe_block(w.moe, config_, layer, work.normed.data(), n, work.proj.data(), work.moe, precision_, hook,
                     ctx_);
    return;
  }
  // Rows are independent: a long prefill goes through in chunks (see mlp_chunk_rows), none of them tiny.
  const int64_t chunk = mlp_chunk_rows(n), hidden = config_.hidden_size;
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    const int64_t m = std::min(chunk, n - r0);
    const float* x = work.normed.data() + r0 * hidden;
    const ops::LinearOutput gate_up[] = {{&w.gate_proj, work.gate.data()},  // [m, intermediate]
                                         {&w.up_proj, work.up.data()}};     // [m, intermediate]
    ops::linear_group(ctx_, x, m, gate_up, 2, precision_);
    ops::silu_mul(ctx_, work.gate.data(), work.up.data(), static_cast<size_t>(m * config_.intermediate_size),
                  work.gate.data(), precision_);
    ops::linear(ctx_, work.gate.data(), m, w.down_proj, work.proj.data() + r0 * hidden, precision_);  // [m, hidden]
  }
}

void TextDecoder::forward(const float* inputs_embeds, int64_t n, const MropePositions& positions, KVCache& cache,
                          DecoderWorkspace& work, LogitsRows rows, std::vector<float>& logits,
                          const TensorHook& hook, const DeepstackInjection* deepstack) const {
  const int64_t hidden = config_.hidden_size;
  if (positions.size() != n) throw_error("decoder: ", n, " tokens but ", positions.size(), " positions");
  if (cache.length() + n > cache.capacity())
    throw_error("context full: ", cache.length(), " + ", n, " tokens exceed the planned ", cache.capacity());

  const int64_t q_width = config_.num_attention_heads * config_.head_dim;
  const int64_t kv_width = config_.num_key_value_heads * config_.head_dim;
  work.hidden.assign(inputs_embeds, inputs_embeds + n * hidden);
  work.normed.resize(static_cast<size_t>(n * hidden));
  work.q.resize(static_cast<size_t>(n * q_width));
  work.k.resize(static_cast<size_t>(n * kv_width));
  work.v.resize(static_cast<size_t>(n * kv_width));
  work.attn.resize(static_cast<size_t>(n * q_width));
  work.proj.resize(static_cast<size_t>(n * hidden));
  work.gate.resize(static_cast<size_t>(mlp_chunk_rows(n) * config_.intermediate_size));
  work.up.resize(static_cast<size_t>(mlp_chunk_rows(n) * config_.intermediate_size));
  work.cos.resize(static_cast<size_t>(n * config_.head_dim));
  work.sin.resize(static_cast<size_t>(n * config_.head_dim));
  rotary_.compute(positions, work.cos.data(), work.sin.data(), precision_);

  const float eps = static_cast<float>(config_.rms_norm_eps);
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    const TextLayerWeights& w = weights_.layers[l];
    ops::rms_norm(ctx_, work.hidden.data(), n, hidden, w.input_layernorm, eps, work.normed.data(), precision_);
    attention_block(l, n, cache, work);
    ops::add_inplace(ctx_, work.hidden.data(), work.proj.data(), work.proj.size(), precision_);
    ops::rms_norm(ctx_, work.hidden.data(), n, hidden, w.post_attention_layernorm, eps, work.normed.data(), precision_);
    mlp_block(l, n, work, hook);
    ops::add_inplace(ctx_, work.hidden.data(), work.proj.data(), work.proj.size(), precision_);
    if (hook) hook("layers." + std::to_string(l), work.hidden.data(), n, hidden);
    if (deepstack && l < static_cast<int64_t>(deepstack->features->size())) {
      const std::vector<float>& level = (*deepstack->features)[static_cast<size_t>(l)];
      for (size_t k = 0; k < deepstack->rows.size(); ++k)
        ops::add_inplace(ctx_, work.hidden.data() + deepstack->rows[k] * hidden, level.data() + k * hidden,
                         static_cast<size_t>(hidden), precision_);
    }
  }
  cache.set_length(cache.length() + n);

  ops::rms_norm(ctx_, work.hidden.data(), n, hidden, weights_.norm, eps, work.normed.data(), precision_);
  if (hook) hook("norm", work.normed.data(), n, hidden);
  const int64_t first = rows == LogitsRows::Last ? n - 1 : 0;
  logits.resize(static_cast<size_t>((n - first) * config_.vocab_size));
  ops::linear(ctx_, work.normed.data() + first * hidden, n - first, weights_.lm_head, logits.data(), precision_);
}

}  // namespace qwen3vl
