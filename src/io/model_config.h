// config.json and generation_config.json of a Hugging Face Qwen3-VL checkpoint.
// Field names follow transformers' Qwen3VLConfig / Qwen3VLTextConfig / Qwen3VLVisionConfig verbatim.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qwen3vl {

struct TextConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // defaults to hidden_size / num_attention_heads when absent
  double rms_norm_eps = 1e-6;
  double rope_theta = 5000000.0;
  std::vector<int64_t> mrope_section;  // per-axis (T, H, W) frequency slots; sums to head_dim / 2
  bool mrope_interleaved = true;
  int64_t max_position_embeddings = 0;
  // MoE (qwen3_vl_moe); zero experts means dense.
  int64_t num_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  bool norm_topk_prob = true;
  // nn.Embedding's padding_idx of embed_tokens (Qwen3VLTextModel): that row gets no gradient in training.
  std::optional<int64_t> pad_token_id;
};

struct VisionConfig {
  int64_t depth = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_heads = 0;
  int64_t out_hidden_size = 0;
  int64_t patch_size = 16;
  int64_t temporal_patch_size = 2;
  int64_t spatial_merge_size = 2;
  int64_t in_channels = 3;
  int64_t num_position_embeddings = 0;
  std::vector<int64_t> deepstack_visual_indexes;
  std::string hidden_act;
  double rope_theta = 10000.0;  // 2-D rotary base: rope_parameters.rope_theta in transformers 5 configs
};

struct ModelConfig {
  std::string path;        // the config.json it came from
  std::string model_type;  // "qwen3_vl" or "qwen3_vl_moe"
  TextConfig text_config;
  VisionConfig vision_config;
  bool tie_word_embeddings = false;
  int64_t image_token_id = 151655;
  int64_t video_token_id = 151656;
  int64_t vision_start_token_id = 151652;
  int64_t vision_end_token_id = 151653;
  std::vector<int64_t> eos_token_id;  // from text_config when present

  bool is_moe() const { return model_type == "qwen3_vl_moe"; }
};

// Throws Error naming the file and the field for anything missing, mistyped or unsupported.
ModelConfig load_model_config(const std::string& config_json_path);

// generation_config.json; defaults are transformers' GenerationConfig defaults.
struct GenerationConfig {
  std::vector<int64_t> eos_token_id;
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> pad_token_id;
  bool do_sample = false;
  double temperature = 1.0;
  int64_t top_k = 50;
  double top_p = 1.0;
  double min_p = 0.0;
  double repetition_penalty = 1.0;
  std::optional<int64_t> max_new_tokens;
};

// A missing file gives the defaults; a malformed one throws Error naming the file and field.
GenerationConfig load_generation_config(const std::string& generation_config_json_path);

}  // namespace qwen3vl
