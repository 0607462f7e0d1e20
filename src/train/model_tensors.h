// Every tensor of a Qwen3-VL checkpoint in the order transformers' Qwen3VLForConditionalGeneration /
// Qwen3VLMoeForConditionalGeneration.named_parameters() lists them (transformers 5.23): model.visual.* (patch_embed,
// pos_embed, blocks, merger, deepstack_merger_list), model.language_model.* (embed_tokens, layers, norm), lm_head.
// Each entry is bound to the weight view that holds it and, when asked, to its gradient pointer in TextGrads /
// VisionGrads, so the name <-> view <-> gradient mapping lives in this one place.
//
// Names are transformers' (>= 4.52) paths whatever the checkpoint's own layout (Qwen2/2.5-VL-era files store
// model.* and visual.*): PEFT keys and the trainer's groups use them; checkpoint_tensor_name maps back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "model/text_weights.h"
#include "model/train_grads.h"
#include "model/vision_weights.h"

namespace qwen3vl {

// The four parts the tune flags select, by exact HF path prefix (never substrings):
//   Merger       model.visual.merger.*
//   Deepstack    model.visual.deepstack_merger_list.*
//   VisionTower  the rest of model.visual.* (patch_embed, pos_embed, blocks)
//   LanguageModel model.language_model.* and lm_head
enum class ParamGroup { LanguageModel, Merger, Deepstack, VisionTower };

const char* param_group_name(ParamGroup group);  // "language_model", "merger", "deepstack", "vision_tower"
ParamGroup param_group_of(const std::string& hf_name);

enum class TensorKind {
  Linear,     // an nn.Linear weight: LoRA may target its module
  Conv3d,     // model.visual.patch_embed.proj.weight, read as a linear over the flattened patch: LoRA may target it
  Bias,       // the bias of a Linear, the Conv3d or a LayerNorm
  Norm,       // an RMSNorm or LayerNorm weight
  Embedding,  // embed_tokens, pos_embed (nn.Embedding)
  Router,     // MoE mlp.gate.weight: an nn.Parameter of Qwen3VLMoeTextTopKRouter in transformers 5.23, no nn.Linear
  Experts,    // MoE mlp.experts.gate_up_proj / down_proj: fused [E, ., .] nn.Parameters
};

struct ModelTensor {
  std::string name;             // HF tensor name
  std::string module;           // the module owning it (the name without its last part)
  ParamGroup group = ParamGroup::LanguageModel;
  TensorKind kind = TensorKind::Linear;
  bool in_layer_norm = false;   // owned by an nn.LayerNorm (vision norm1 / norm2, merger norms)
  // lm_head of a tied checkpoint: an nn.Linear module whose weight IS embed_tokens.weight. Listed for LoRA (PEFT
  // can adapt the module) but not a parameter of its own (named_parameters() lists the shared weight once).
  bool tied_alias = false;
  std::vector<int64_t> shape;   // as the checkpoint stores it (Conv3d: [D, C, T, P, P]; experts: the file's layout)
  DType dtype = DType::F32;     // the dtype of the view (the checkpoint's, unless converted at load)

  WeightMatrix* matrix = nullptr;                // Linear, Conv3d, Embedding, Router
  WeightVector* vector = nullptr;                // Bias, Norm
  std::vector<WeightMatrix>* experts = nullptr;  // Experts: one view per expert, contiguous in the fused tensor

  // Gradient binding (null unless grads were passed to model_tensors).
  float** grad = nullptr;                                // where the gradient pointer of this tensor goes
  ops::LinearGrads* linear_grads = nullptr;              // Linear / Conv3d / Router: the module's LinearGrads
  std::vector<ops::LinearGrads>* expert_grads = nullptr; // Experts: one per expert

  int64_t numel() const;
};

// The tensors of `text` and `vision` in named_parameters() order, plus a tied lm_head as a tied_alias entry last.
// With `text_grads` / `vision_grads` given they are sized to the model (layers, blocks, experts) and every entry
// points at its slot in them.
std::vector<ModelTensor> model_tensors(const ModelConfig& config, TextWeights& text, VisionWeights& vision,
                                       TextGrads* text_grads = nullptr, VisionGrads* vision_grads = nullptr);

// The name a tensor has in the checkpoint the weights were bound from (text.prefix / vision.prefix).
std::string checkpoint_tensor_name(const TextWeights& text, const VisionWeights& vision, const std::string& hf_name);

}  // namespace qwen3vl
