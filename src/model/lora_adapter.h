// PEFT LoRA adapters as published (adapter_config.json + adapter_model.safetensors), read and checked against a
// checkpoint, and bound beside its weights. An adapter set (AdaptedWeights) is a copy of the checkpoint's weight
// views in which each adapted WeightMatrix carries its LoRA terms (ops.h LoraTerm, computed inside ops::linear),
// and the tensors an adapter saved whole (modules_to_save, biases) point into the adapter's file. The checkpoint's
// own weights are never changed, so requests with different adapter sets share them.
//
// Module paths are transformers' (>= 4.52) Qwen3VLForConditionalGeneration paths, as PEFT saves them under
// "base_model.model.": model.language_model.layers.{l}.self_attn.q_proj, ..., model.visual.blocks.{i}.attn.qkv,
// model.visual.merger.linear_fc1, model.visual.deepstack_merger_list.{k}.linear_fc2, model.visual.patch_embed.proj
// (a Conv3d with kernel == stride: its LoRA is a linear one over the flattened patch), lm_head.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/adapter_config.h"
#include "io/safetensors.h"
#include "model/text_weights.h"
#include "model/vision_weights.h"
#include "ops/ops.h"

namespace qwen3vl {

// ||row||_2 as torch.linalg.norm(dim=1) computes it for float32 on an AVX2 CPU: 8 running sums of squares (element c
// into sum c % 8, multiply and add rounded separately), added in order, then the square root (bit-identical to
// torch 2.15 on the test adapters; a double sum differs in ~20% of rows by an ulp). DoRA's weight norm.
float torch_row_norm(const float* row, int64_t count);

struct LoraModule;

// PEFT's get_delta_weight: (lora_B @ lora_A) * scaling in float, [rows, cols]. torch's CPU matmul accumulates each
// element over r with fused multiply-adds in order (checked bit for bit on the test adapters; a separate multiply
// and add differ in 40% of the elements), so this does too.
std::vector<float> lora_delta_weight(const LoraModule& m, int64_t rows, int64_t cols, float scaling);

// DoRA's magnitude / ||W + delta|| per output row (weight: W [rows, cols] as float), as both its forward
// (DoraLinearLayer.forward) and its merge (DoraLinearVariant.merge_unsafe) take it.
std::vector<float> dora_scale(const LoraModule& m, const float* weight, const std::vector<float>& delta, int64_t rows,
                              int64_t cols);

// One adapted linear of an adapter.
struct LoraModule {
  std::string path;             // HF module path
  int64_t rank = 0;
  double scaling = 0.0;         // PEFT's lora_alpha / r (or / sqrt(r) with use_rslora), before any user scale
  std::vector<float> lora_A;    // [r, in]   (PEFT keeps adapter weights in fp32: autocast_adapter_dtype)
  std::vector<float> lora_B;    // [out, r]
  std::vector<float> magnitude; // DoRA's lora_magnitude_vector [out]; empty without DoRA
};

class LoraAdapter {
 public:
  // Reads DIR and checks it against the checkpoint whose weights are given (vision may be null): throws Error
  // naming the adapter file and the tensor or field at fault.
  static std::shared_ptr<const LoraAdapter> load(const std::string& dir, const TextWeights& text,
                                                 const VisionWeights* vision);

  const std::string& dir() const { return dir_; }
  const AdapterConfig& config() const { return config_; }
  const std::vector<LoraModule>& modules() const { return modules_; }
  // Base tensors the adapter replaces whole, by HF tensor name (modules_to_save copies, biases).
  const std::map<std::string, TensorView>& saved_tensors() const { return saved_; }
  // Whether anything of the vision tower changes (its image features then depend on the adapter).
  bool touches_vision() const { return touches_vision_; }

 private:
  std::string dir_;
  AdapterConfig config_;
  std::shared_ptr<SafetensorsFile> file_;
  std::vector<LoraModule> modules_;
  std::map<std::string, TensorView> saved_;
  bool touches_vision_ = false;
};

// An adapter with the user's scale, which multiplies PEFT's scaling (as LoraLayer.scale_layer does).
struct ActiveAdapter {
  std::shared_ptr<const LoraAdapter> adapter;
  double scale = 1.0;
};

// The checkpoint's weights with a list of adapters bound, applied in order (PEFT's several active adapters: each
// adds its term to the running result). Immutable once built; not copyable (the views point into it).
class AdaptedWeights {
 public:
  AdaptedWeights(const TextWeights& text, const VisionWeights* vision, std::vector<ActiveAdapter> adapters);
  AdaptedWeights(const AdaptedWeights&) = delete;
  AdaptedWeights& operator=(const AdaptedWeights&) = delete;

  const TextWeights& text() const { return text_; }
  const VisionWeights* vision() const { return has_vision_ ? &vision_ : nullptr; }
  const std::vector<ActiveAdapter>& adapters() const { return adapters_; }
  bool touches_vision() const;

 private:
  TextWeights text_;
  VisionWeights vision_;
  bool has_vision_ = false;
  std::vector<ActiveAdapter> adapters_;
  std::deque<std::vector<LoraTerm>> terms_;  // one list per adapted weight
  std::deque<std::vector<float>> dora_scales_;
};

}  // namespace qwen3vl
