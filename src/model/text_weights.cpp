#include "model/text_weights.h"

#include "core/error.h"
#include "model/weight_convert.h"

namespace qwen3vl {
namespace {

class Binder {
 public:
  Binder(const TensorStore& store, const ModelConfig& config) : store_(store), config_(config) {}

  const TensorView& expect(const std::string& name, std::vector<int64_t> shape) const {
    const TensorView& view = store_.get(name);
    if (view.shape != shape) {
      TensorView wanted;
      wanted.shape = shape;
      throw_error(view.file, ": tensor ", name, " has shape ", view.shape_string(), " but ", config_.path,
                  " implies ", wanted.shape_string());
    }
    return view;
  }
  WeightMatrix matrix(const std::string& name, int64_t rows, int64_t cols) const {
    return bind_weight_matrix(expect(name, {rows, cols}), rows, cols);
  }
  WeightMatrix table(const std::string& name, int64_t rows, int64_t cols) const {
    return bind_embedding_table(expect(name, {rows, cols}), rows, cols);
  }
  WeightVector vector(const std::string& name, int64_t size) const {
    return bind_weight_vector(expect(name, {size}), size);
  }

 private:
  const TensorStore& store_;
  const ModelConfig& config_;
};

// Released Qwen3-VL files use model.language_model.*; Qwen2/2.5-VL-era files put the language model at model.*.
std::string find_prefix(const TensorStore& store) {
  for (const char* prefix : {"model.language_model.", "model."})
    if (store.contains(std::string(prefix) + "embed_tokens.weight")) return prefix;
  throw_error(store.description(), ": missing tensor model.language_model.embed_tokens.weight");
}

}  // namespace

TextWeights bind_text_weights(const TensorStore& store, const ModelConfig& config) {
  const TextConfig& c = config.text_config;
  const Binder bind(store, config);
  TextWeights w;
  w.prefix = find_prefix(store);
  const int64_t q_width = c.num_attention_heads * c.head_dim;
  const int64_t kv_width = c.num_key_value_heads * c.head_dim;
  w.embed_tokens = bind.table(w.prefix + "embed_tokens.weight", c.vocab_size, c.hidden_size);
  w.dtype = w.embed_tokens.dtype;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = w.prefix + "layers." + std::to_string(l) + ".";
    TextLayerWeights layer;
    layer.input_layernorm = bind.vector(p + "input_layernorm.weight", c.hidden_size);
    layer.q_proj = bind.matrix(p + "self_attn.q_proj.weight", q_width, c.hidden_size);
    layer.k_proj = bind.matrix(p + "self_attn.k_proj.weight", kv_width, c.hidden_size);
    layer.v_proj = bind.matrix(p + "self_attn.v_proj.weight", kv_width, c.hidden_size);
    layer.o_proj = bind.matrix(p + "self_attn.o_proj.weight", c.hidden_size, q_width);
    layer.q_norm = bind.vector(p + "self_attn.q_norm.weight", c.head_dim);
    layer.k_norm = bind.vector(p + "self_attn.k_norm.weight", c.head_dim);
    layer.post_attention_layernorm = bind.vector(p + "post_attention_layernorm.weight", c.hidden_size);
    // qwen3_vl_moe: every layer is a sparse MoE block in released files; a layer that carries a dense MLP instead
    // (transformers' mlp_only_layers / decoder_sparse_step) is bound as dense.
    if (config.is_moe() && !store.contains(p + "mlp.gate_proj.weight")) {
      layer.moe = bind_moe_layer(store, p, config);
      w.layers.push_back(layer);
      continue;
    }
    layer.gate_proj = bind.matrix(p + "mlp.gate_proj.weight", c.intermediate_size, c.hidden_size);
    layer.up_proj = bind.matrix(p + "mlp.up_proj.weight", c.intermediate_size, c.hidden_size);
    layer.down_proj = bind.matrix(p + "mlp.down_proj.weight", c.hidden_size, c.intermediate_size);
    w.layers.push_back(layer);
  }
  w.norm = bind.vector(w.prefix + "norm.weight", c.hidden_size);
  // An lm_head in the file wins; without one the embedding is reused (tied checkpoints such as 2B and 4B).
  if (store.contains("lm_head.weight")) {
    w.lm_head = bind.matrix("lm_head.weight", c.vocab_size, c.hidden_size);
  } else if (config.tie_word_embeddings) {
    w.lm_head = w.embed_tokens;
    w.lm_head_tied = true;
  } else {
    throw_error(store.description(), ": missing tensor lm_head.weight (", config.path,
                " has tie_word_embeddings false)");
  }
  return w;
}

}  // namespace qwen3vl
