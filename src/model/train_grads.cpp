#include "model/train_grads.h"

#include <algorithm>

namespace qwen3vl {
namespace {

template <typename T>
bool any_of(const std::vector<T>& parts) {
  return std::any_of(parts.begin(), parts.end(), [](const T& part) { return part.any(); });
}

}  // namespace

bool MoeLayerGrads::any() const { return gate.any() || any_of(gate_up_proj) || any_of(down_proj); }

bool TextLayerGrads::any() const {
  return input_layernorm.any() || q_proj.any() || k_proj.any() || v_proj.any() || o_proj.any() || q_norm.any() ||
         k_norm.any() || post_attention_layernorm.any() || gate_proj.any() || up_proj.any() || down_proj.any() ||
         moe.any();
}

bool TextGrads::any() const { return embed_tokens || any_of(layers) || norm.any() || lm_head.any(); }

bool VisionBlockGrads::any() const {
  return norm1.any() || qkv.any() || proj.any() || norm2.any() || linear_fc1.any() || linear_fc2.any();
}

bool VisionMergerGrads::any() const { return norm.any() || linear_fc1.any() || linear_fc2.any(); }

bool VisionGrads::any() const {
  return patch_embed.any() || pos_embed || any_of(blocks) || merger.any() || any_of(deepstack_merger_list);
}

}  // namespace qwen3vl
