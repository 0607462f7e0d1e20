#include "train/model_tensors.h"

#include "core/error.h"

namespace qwen3vl {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

const std::string kText = "model.language_model.";
const std::string kVision = "model.visual.";

// Appends entries in the order the calls come, which follows the modules' __init__ order in modeling_qwen3_vl.py.
class TensorListBuilder {
 public:
  explicit TensorListBuilder(std::vector<ModelTensor>& out) : out_(out) {}

  void linear(const std::string& module, WeightMatrix& weight, ops::LinearGrads* grads, TensorKind kind,
              std::vector<int64_t> shape = {}) {
    ModelTensor& t = add(module, "weight", kind, shape.empty() ? std::vector<int64_t>{weight.rows, weight.cols} : shape);
    t.matrix = &weight;
    t.dtype = weight.dtype;
    t.linear_grads = grads;
    if (grads) t.grad = &grads->weight;
  }
  void bias(const std::string& module, WeightVector& bias, ops::LinearGrads* grads) {
    vector(module, "bias", TensorKind::Bias, bias, grads ? &grads->bias : nullptr, false);
  }
  void vision_linear(const std::string& module, VisionLinear& weights, ops::LinearGrads* grads) {
    linear(module, weights.weight, grads, TensorKind::Linear);
    bias(module, weights.bias, grads);
  }
  void norm(const std::string& module, WeightVector& weight, NormGrads* grads) {
    vector(module, "weight", TensorKind::Norm, weight, grads ? &grads->weight : nullptr, false);
  }
  void layer_norm(const std::string& module, VisionLayerNorm& norm, NormGrads* grads) {
    vector(module, "weight", TensorKind::Norm, norm.weight, grads ? &grads->weight : nullptr, true);
    vector(module, "bias", TensorKind::Bias, norm.bias, grads ? &grads->bias : nullptr, true);
  }
  void table(const std::string& module, WeightMatrix& weight, float** grad) {
    ModelTensor& t = add(module, "weight", TensorKind::Embedding, {weight.rows, weight.cols});
    t.matrix = &weight;
    t.dtype = weight.dtype;
    t.grad = grad;
  }
  void merger(const std::string& module, VisionMergerWeights& weights, VisionMergerGrads* grads) {
    layer_norm(module + ".norm", weights.norm, grads ? &grads->norm : nullptr);
    vision_linear(module + ".linear_fc1", weights.linear_fc1, grads ? &grads->linear_fc1 : nullptr);
    vision_linear(module + ".linear_fc2", weights.linear_fc2, grads ? &grads->linear_fc2 : nullptr);
  }
  // A fused expert tensor: the file's [E, out, in] (OutIn) or [E, in, out] (InOut) layout.
  void experts(const std::string& module, const char* param, std::vector<WeightMatrix>& slices,
               std::vector<ops::LinearGrads>* grads) {
    const WeightMatrix& first = slices.front();
    const auto count = static_cast<int64_t>(slices.size());
    const std::vector<int64_t> shape = first.layout == WeightLayout::OutIn
                                           ? std::vector<int64_t>{count, first.rows, first.cols}
                                           : std::vector<int64_t>{count, first.cols, first.rows};
    ModelTensor& t = add(module, param, TensorKind::Experts, shape);
    t.experts = &slices;
    t.dtype = first.dtype;
    t.expert_grads = grads;
  }
  ModelTensor& add(const std::string& module, const std::string& param, TensorKind kind,
                   std::vector<int64_t> shape) {
    ModelTensor t;
    t.name = module + "." + param;
    t.module = module;
    t.group = param_group_of(t.name);
    t.kind = kind;
    t.shape = std::move(shape);
    out_.push_back(std::move(t));
    return out_.back();
  }

 private:
  void vector(const std::string& module, const char* param, TensorKind kind, WeightVector& weight, float** grad,
              bool in_layer_norm) {
    ModelTensor& t = add(module, param, kind, {weight.size});
    t.vector = &weight;
    t.dtype = weight.dtype;
    t.grad = grad;
    t.in_layer_norm = in_layer_norm;
  }

  std::vector<ModelTensor>& out_;
};

void add_vision(TensorListBuilder& add, const ModelConfig& config, VisionWeights& vision, VisionGrads* grads) {
  const VisionConfig& c = config.vision_config;
  if (grads) {
    grads->blocks.resize(vision.blocks.size());
    grads->deepstack_merger_list.resize(vision.deepstack_merger_list.size());
  }
  add.linear(kVision + "patch_embed.proj", vision.patch_embed.weight, grads ? &grads->patch_embed : nullptr,
             TensorKind::Conv3d,
             {vision.patch_embed.weight.rows, c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size});
  add.bias(kVision + "patch_embed.proj", vision.patch_embed.bias, grads ? &grads->patch_embed : nullptr);
  add.table(kVision + "pos_embed", vision.pos_embed, grads ? &grads->pos_embed : nullptr);
  for (size_t i = 0; i < vision.blocks.size(); ++i) {
    VisionBlockWeights& b = vision.blocks[i];
    VisionBlockGrads* g = grads ? &grads->blocks[i] : nullptr;
    const std::string p = kVision + "blocks." + std::to_string(i) + ".";
    add.layer_norm(p + "norm1", b.norm1, g ? &g->norm1 : nullptr);
    add.layer_norm(p + "norm2", b.norm2, g ? &g->norm2 : nullptr);
    add.vision_linear(p + "attn.qkv", b.qkv, g ? &g->qkv : nullptr);
    add.vision_linear(p + "attn.proj", b.proj, g ? &g->proj : nullptr);
    add.vision_linear(p + "mlp.linear_fc1", b.linear_fc1, g ? &g->linear_fc1 : nullptr);
    add.vision_linear(p + "mlp.linear_fc2", b.linear_fc2, g ? &g->linear_fc2 : nullptr);
  }
  add.merger(kVision + "merger", vision.merger, grads ? &grads->merger : nullptr);
  for (size_t k = 0; k < vision.deepstack_merger_list.size(); ++k)
    add.merger(kVision + "deepstack_merger_list." + std::to_string(k), vision.deepstack_merger_list[k],
               grads ? &grads->deepstack_merger_list[k] : nullptr);
}

void add_text_layer(TensorListBuilder& add, const std::string& p, TextLayerWeights& w, TextLayerGrads* g) {
  add.linear(p + "self_attn.q_proj", w.q_proj, g ? &g->q_proj : nullptr, TensorKind::Linear);
  add.linear(p + "self_attn.k_proj", w.k_proj, g ? &g->k_proj : nullptr, TensorKind::Linear);
  add.linear(p + "self_attn.v_proj", w.v_proj, g ? &g->v_proj : nullptr, TensorKind::Linear);
  add.linear(p + "self_attn.o_proj", w.o_proj, g ? &g->o_proj : nullptr, TensorKind::Linear);
  add.norm(p + "self_attn.q_norm", w.q_norm, g ? &g->q_norm : nullptr);
  add.norm(p + "self_attn.k_norm", w.k_norm, g ? &g->k_norm : nullptr);
  if (w.moe.empty()) {
    add.linear(p + "mlp.gate_proj", w.gate_proj, g ? &g->gate_proj : nullptr, TensorKind::Linear);
    add.linear(p + "mlp.up_proj", w.up_proj, g ? &g->up_proj : nullptr, TensorKind::Linear);
    add.linear(p + "mlp.down_proj", w.down_proj, g ? &g->down_proj : nullptr, TensorKind::Linear);
  } else {
    // Qwen3VLMoeTextSparseMoeBlock registers experts before the router.
    MoeLayerGrads* moe = g ? &g->moe : nullptr;
    if (moe) {
      moe->gate_up_proj.resize(w.moe.gate_up_proj.size());
      moe->down_proj.resize(w.moe.down_proj.size());
    }
    add.experts(p + "mlp.experts", "gate_up_proj", w.moe.gate_up_proj, moe ? &moe->gate_up_proj : nullptr);
    add.experts(p + "mlp.experts", "down_proj", w.moe.down_proj, moe ? &moe->down_proj : nullptr);
    add.linear(p + "mlp.gate", w.moe.gate, moe ? &moe->gate : nullptr, TensorKind::Router);
  }
  add.norm(p + "input_layernorm", w.input_layernorm, g ? &g->input_layernorm : nullptr);
  add.norm(p + "post_attention_layernorm", w.post_attention_layernorm, g ? &g->post_attention_layernorm : nullptr);
}

void add_text(TensorListBuilder& add, TextWeights& text, TextGrads* grads) {
  if (grads) grads->layers.resize(text.layers.size());
  add.table(kText + "embed_tokens", text.embed_tokens, grads ? &grads->embed_tokens : nullptr);
  for (size_t l = 0; l < text.layers.size(); ++l)
    add_text_layer(add, kText + "layers." + std::to_string(l) + ".", text.layers[l],
                   grads ? &grads->layers[l] : nullptr);
  add.norm(kText + "norm", text.norm, grads ? &grads->norm : nullptr);
}

}  // namespace

const char* param_group_name(ParamGroup group) {
  switch (group) {
    case ParamGroup::LanguageModel: return "language_model";
    case ParamGroup::Merger: return "merger";
    case ParamGroup::Deepstack: return "deepstack";
    case ParamGroup::VisionTower: return "vision_tower";
  }
  return "?";
}

ParamGroup param_group_of(const std::string& hf_name) {
  if (starts_with(hf_name, kVision + "merger.")) return ParamGroup::Merger;
  if (starts_with(hf_name, kVision + "deepstack_merger_list.")) return ParamGroup::Deepstack;
  if (starts_with(hf_name, kVision)) return ParamGroup::VisionTower;
  if (starts_with(hf_name, kText) || starts_with(hf_name, "lm_head.")) return ParamGroup::LanguageModel;
  throw_error("tensor ", hf_name, " belongs to no part of Qwen3-VL (model.visual.*, model.language_model.*, lm_head)");
}

int64_t ModelTensor::numel() const {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return count;
}

std::vector<ModelTensor> model_tensors(const ModelConfig& config, TextWeights& text, VisionWeights& vision,
                                       TextGrads* text_grads, VisionGrads* vision_grads) {
  std::vector<ModelTensor> out;
  TensorListBuilder add(out);
  add_vision(add, config, vision, vision_grads);
  add_text(add, text, text_grads);
  add.linear("lm_head", text.lm_head, text_grads ? &text_grads->lm_head : nullptr, TensorKind::Linear);
  out.back().tied_alias = text.lm_head_tied;
  return out;
}

std::string checkpoint_tensor_name(const TextWeights& text, const VisionWeights& vision, const std::string& hf_name) {
  if (starts_with(hf_name, kText)) return text.prefix + hf_name.substr(kText.size());
  if (starts_with(hf_name, kVision)) return vision.prefix + hf_name.substr(kVision.size());
  return hf_name;
}

}  // namespace qwen3vl
