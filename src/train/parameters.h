// The training state of the weights: per trainable tensor of a ModuleSelection its float32 master value and float32
// gradient, kept apart from the checkpoint's immutable weights. The set also hands the model code what it reads and
// writes: weight views in which every trained tensor points at its master (so each forward sees the values of the
// last optimizer step; a bf16 weight trains as a float32 master, as PyTorch trains a model loaded in float32) and
// every LoRA target carries its LoraTerm on the master factors, and gradient structs pointing into the buffers.
//
// Order: parameters() lists the tensors in the selection's order, the named_parameters() order of the (PEFT-wrapped)
// transformers model (module_selection.h). Masters and gradients are each one contiguous float32 array in that order
// (values() / grads()), so the optimizer, clipping, checkpoints and the data-parallel all-reduce can each walk or
// send them in one piece, in the same order on every rank.
//
// LoRA initialisation (PEFT's init_lora_weights=True, peft/tuners/lora/layer.py reset_lora_parameters):
//   lora_A = kaiming_uniform_(a=sqrt(5)), i.e. uniform(-1/sqrt(in), 1/sqrt(in)) with in = the weight's input
//            features (the flattened patch for the Conv3d); drawn per module from std::mt19937_64 seeded with
//            std::seed_seq{seed low/high 32 bits, FNV-1a 64 of the module path low/high 32 bits}, each value
//            -b + 2b * u with u = (draw >> 11) * 2^-53 in double, rounded to float, row-major. A module's values thus
//            depend only on the seed and its path, not on which other modules train.
//   lora_B = 0
//   DoRA lora_magnitude_vector = ||W + s B A|| per output row = ||W||_row (peft/tuners/lora/dora.py update_layer),
//            as torch_row_norm computes it on the float32 row.
// Or everything from a PEFT adapter folder (LoraAdapter::load): its factors, magnitudes and modules_to_save tensors,
// so a test can start from the adapter PEFT initialised.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "engine/loaded_model.h"
#include "model/text_weights.h"
#include "model/train_grads.h"
#include "model/vision_weights.h"
#include "train/module_selection.h"

namespace qwen3vl {

struct Parameter {
  std::string name;    // SelectedParameter::name: HF tensor name, or PEFT key for LoRA factors
  std::string module;  // HF module path
  ParamKind kind = ParamKind::Full;
  ParamGroup group = ParamGroup::LanguageModel;
  bool weight_decay = true;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  float* value = nullptr;  // the float32 master, `numel` values laid out as `shape`
  float* grad = nullptr;   // its float32 gradient, same layout
  DType dtype = DType::F32;  // Full: the dtype of the checkpoint tensor (the writers round to it); LoRA: F32
};

struct LoraInit {
  uint64_t seed = 0;
  std::string adapter_dir;  // non-empty: start from this PEFT adapter instead of PEFT's initialisation
};

class ParameterSet {
 public:
  // `text` / `vision`: the checkpoint's weight views (not copied data: the frozen weights stay where they are).
  // Throws Error for a tensor that cannot train fully (a quantized weight) or an adapter that does not fit the
  // selection (naming the adapter file and module).
  ParameterSet(const ModelConfig& config, const TextWeights& text, const VisionWeights& vision,
               ModuleSelection selection, const LoraInit& init = {});
  ParameterSet(const LoadedModel& model, ModuleSelection selection, const LoraInit& init = {});
  ParameterSet(const ParameterSet&) = delete;
  ParameterSet& operator=(const ParameterSet&) = delete;

  const ModuleSelection& selection() const { return selection_; }
  const std::vector<Parameter>& parameters() const { return parameters_; }
  const Parameter* find(const std::string& name) const;  // null when `name` does not train
  int64_t numel() const { return static_cast<int64_t>(values_.size()); }
  float* values() { return values_.data(); }  // every master, in parameters() order
  const float* values() const { return values_.data(); }
  float* grads() { return grads_.data(); }    // every gradient, in parameters() order
  const float* grads() const { return grads_.data(); }

  // What the train-mode forward reads and where its backward accumulates.
  const TextWeights& text_weights() const { return text_; }
  const VisionWeights& vision_weights() const { return vision_; }
  const TextGrads& text_grads() const { return text_grads_; }
  const VisionGrads& vision_grads() const { return vision_grads_; }

  void zero_grad();
  // After each optimizer step: recomputes what depends on the masters, DoRA's row norms ||W + s B A|| and
  // dora_scale = magnitude / norm.
  void refresh();

 private:
  // One adapted weight, with what ops::linear and ops::linear_backward read through pointers.
  struct BoundLora {
    const WeightMatrix* base = nullptr;  // the frozen weight (its view inside text_ / vision_)
    LoraTerm term;
    float* lora_A = nullptr;     // the masters (term.lora_A / lora_B point at them)
    float* lora_B = nullptr;
    float* magnitude = nullptr;  // DoRA only
    float* grad_A = nullptr;
    float* grad_B = nullptr;
    float* grad_magnitude = nullptr;
    std::vector<float> dora_scale, dora_norm;
  };

  void bind_full(const Parameter& p, const ModelTensor& t);
  void bind_lora(size_t target_index, const std::vector<ModelTensor>& tensors);
  void init_lora(uint64_t seed);
  void load_adapter(const std::string& dir, const TextWeights& base_text, const VisionWeights& base_vision);

  ModuleSelection selection_;
  TextWeights text_;
  VisionWeights vision_;
  TextGrads text_grads_;
  VisionGrads vision_grads_;
  std::vector<Parameter> parameters_;
  std::vector<float> values_, grads_;
  std::deque<BoundLora> lora_;  // per selection_.lora_targets entry (a deque: terms and pointers stay put)
};

}  // namespace qwen3vl
