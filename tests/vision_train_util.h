// Shared by the vision-tower training tests: a checkpoint's tower bound for training, and gradient buffers for
// every tower weight named as transformers' Qwen3VLVisionModel.named_parameters() names them ("blocks.0.attn.qkv.weight",
// "pos_embed.weight", ...; LoRA factors as "<module>.lora_A" / "<module>.lora_B").
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/train_grads.h"
#include "model/vision_weights.h"
#include "test_util.h"

namespace qwen3vl {
namespace testing {

struct VisionCheckpoint {
  ModelConfig config;
  TensorStore store;
  VisionWeights weights;
};

inline VisionCheckpoint open_vision_checkpoint(const std::string& name) {
  VisionCheckpoint c;
  const std::string dir = model_fixture(name);
  c.config = load_model_config(dir + "/config.json");
  c.store = TensorStore::open_dir(dir);
  c.weights = bind_vision_weights(c.store, c.config);
  return c;
}

// Zeroed float buffers for the weights `trainable` selects (by name), wired into `grads`; the others stay null.
class VisionGradBuffers {
 public:
  VisionGradBuffers(const VisionWeights& w, const std::function<bool(const std::string&)>& trainable)
      : trainable_(trainable) {
    linear("patch_embed.proj", w.patch_embed, grads.patch_embed);
    grads.pos_embed = buffer("pos_embed.weight", w.pos_embed.rows * w.pos_embed.cols);
    grads.blocks.resize(w.blocks.size());
    for (size_t i = 0; i < w.blocks.size(); ++i) {
      const std::string p = "blocks." + std::to_string(i) + ".";
      const VisionBlockWeights& b = w.blocks[i];
      VisionBlockGrads& g = grads.blocks[i];
      norm(p + "norm1", b.norm1, g.norm1);
      linear(p + "attn.qkv", b.qkv, g.qkv);
      linear(p + "attn.proj", b.proj, g.proj);
      norm(p + "norm2", b.norm2, g.norm2);
      linear(p + "mlp.linear_fc1", b.linear_fc1, g.linear_fc1);
      linear(p + "mlp.linear_fc2", b.linear_fc2, g.linear_fc2);
    }
    merger("merger", w.merger, grads.merger);
    grads.deepstack_merger_list.resize(w.deepstack_merger_list.size());
    for (size_t k = 0; k < w.deepstack_merger_list.size(); ++k)
      merger("deepstack_merger_list." + std::to_string(k), w.deepstack_merger_list[k],
             grads.deepstack_merger_list[k]);
  }
  VisionGradBuffers(const VisionGradBuffers&) = delete;
  VisionGradBuffers& operator=(const VisionGradBuffers&) = delete;

  VisionGrads grads;
  std::map<std::string, std::vector<float>> buffers;  // the trainable weights' gradients, by name

 private:
  float* buffer(const std::string& name, int64_t count) {
    if (!trainable_(name)) return nullptr;
    std::vector<float>& b = buffers[name];
    b.assign(static_cast<size_t>(count), 0.f);
    return b.data();
  }
  void norm(const std::string& module, const VisionLayerNorm& w, NormGrads& g) {
    g.weight = buffer(module + ".weight", w.weight.size);
    g.bias = buffer(module + ".bias", w.bias.size);
  }
  void linear(const std::string& module, const VisionLinear& w, ops::LinearGrads& g) {
    g.weight = buffer(module + ".weight", w.weight.rows * w.weight.cols);
    g.bias = buffer(module + ".bias", w.bias.size);
    if (w.weight.lora.count == 0) return;
    std::vector<float*>& a = factor_lists_.emplace_back();
    std::vector<float*>& b = factor_lists_.emplace_back();
    for (int t = 0; t < w.weight.lora.count; ++t) {
      const LoraTerm& term = w.weight.lora.terms[t];
      const std::string suffix = t == 0 ? "" : "." + std::to_string(t);
      a.push_back(buffer(module + ".lora_A" + suffix, term.lora_A.rows * term.lora_A.cols));
      b.push_back(buffer(module + ".lora_B" + suffix, term.lora_B.rows * term.lora_B.cols));
    }
    const auto any_set = [](const std::vector<float*>& list) {
      for (float* p : list) if (p) return true;
      return false;
    };
    if (any_set(a)) g.lora_A = a.data();
    if (any_set(b)) g.lora_B = b.data();
  }
  void merger(const std::string& module, const VisionMergerWeights& w, VisionMergerGrads& g) {
    norm(module + ".norm", w.norm, g.norm);
    linear(module + ".linear_fc1", w.linear_fc1, g.linear_fc1);
    linear(module + ".linear_fc2", w.linear_fc2, g.linear_fc2);
  }

  std::function<bool(const std::string&)> trainable_;
  std::deque<std::vector<float*>> factor_lists_;  // LinearGrads::lora_A / lora_B arrays (stable addresses)
};

}  // namespace testing
}  // namespace qwen3vl
