// What a checkpoint directory is, from its config, safetensors headers (mapped, never read) and chat template —
// no tokenizer needed: the facts behind `qwen3vl info` (and a server's model listing), as one JSON object:
//   model_type, architecture ("dense" | "moe"), moe {num_experts, num_experts_per_tok, moe_intermediate_size,
//   expert_layout} or null, tie_word_embeddings, lm_head_in_file, text {...geometry}, vision {...geometry},
//   dtypes {safetensors dtype: tensor count}, activation_dtype ("bf16" | "f32"), tensors, tensor_bytes,
//   safetensors_files, bytes_on_disk, parameters {text_total, text_active, vision, total, active},
//   chat_template ("Instruct" | "Thinking" | "none" | "unknown"), tokenizer (bool),
//   memory {weights_mapped_bytes, kv_cache_bytes_per_1k_tokens (at the activation dtype, as the engine stores it),
//           context_tokens, kv_cache_bytes, decoder_scratch_bytes,
//           image_tokens, vision_activation_bytes, total_bytes, expert_bytes_read_per_token (MoE)}.
// Active parameters count k/E of the expert tensors. Memory plans for `context` tokens of KV cache at the activation
// dtype (as this engine stores it), a prefill of that length, and one image of `max_image_tokens` merged visual tokens
// (<= 0: the largest the checkpoint's preprocessor_config.json allows, else the released 16384).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace qwen3vl {

// Throws Error naming the file and field at fault.
nlohmann::ordered_json describe_checkpoint(const std::string& dir, int64_t context = 4096,
                                           int64_t max_image_tokens = -1);

}  // namespace qwen3vl
