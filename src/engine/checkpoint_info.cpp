#include "engine/checkpoint_info.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.h"
#include "engine/chat_template_files.h"
#include "engine/loaded_model.h"
#include "io/model_config.h"
#include "model/text_decoder.h"
#include "io/safetensors.h"
#include "tokenizer/chat_template.h"

namespace qwen3vl {
namespace {

using nlohmann::ordered_json;
namespace fs = std::filesystem;

struct TensorTotals {
  int64_t count = 0;
  int64_t bytes = 0;           // tensor data bytes (what gets mapped)
  int64_t text_params = 0;     // language model, experts included
  int64_t expert_params = 0;   // mlp.experts.* (MoE)
  int64_t vision_params = 0;   // visual.*
  std::map<std::string, int64_t> dtypes;  // safetensors dtype -> tensor count
};

TensorTotals count_tensors(const TensorStore& store) {
  TensorTotals t;
  for (const std::string& name : store.names()) {
    const TensorView& view = store.get(name);
    const int64_t numel = view.numel();
    ++t.count;
    t.bytes += static_cast<int64_t>(view.bytes);  // stored bytes: quantized tensors have no per-element size
    ++t.dtypes[dtype_name(view.dtype)];
    if (name.find("visual.") != std::string::npos) {
      t.vision_params += numel;
    } else {
      t.text_params += numel;
      if (name.find(".mlp.experts.") != std::string::npos) t.expert_params += numel;
    }
  }
  return t;
}

int64_t safetensors_file_bytes(const std::string& dir, int64_t* files) {
  int64_t bytes = 0;
  *files = 0;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".safetensors") {
      bytes += static_cast<int64_t>(fs::file_size(entry.path()));
      ++*files;
    }
  return bytes;
}

std::string template_flavour(const std::string& dir) {
  try {
    if (!find_chat_template(dir)) return "none";
    return load_chat_template(dir).kind() == ChatTemplateKind::Thinking ? "Thinking" : "Instruct";
  } catch (const Error&) {
    return "unknown";
  }
}

// Merged visual tokens of the largest image the preprocessor lets through (size.longest_edge pixels, HF's
// max_pixels), or the released default 16777216 pixels = 16384 tokens.
int64_t preprocessor_max_image_tokens(const std::string& dir, const VisionConfig& v) {
  int64_t max_pixels = 16777216;
  std::ifstream in(dir + "/preprocessor_config.json");
  if (in) {
    const auto json = nlohmann::json::parse(in, nullptr, false);
    if (json.is_object() && json.contains("size") && json["size"].is_object() &&
        json["size"].contains("longest_edge") && json["size"]["longest_edge"].is_number_integer())
      max_pixels = json["size"]["longest_edge"].get<int64_t>();
    else if (json.is_object() && json.contains("max_pixels") && json["max_pixels"].is_number_integer())
      max_pixels = json["max_pixels"].get<int64_t>();
  }
  const int64_t unit = v.patch_size * v.spatial_merge_size;
  return std::max<int64_t>(1, max_pixels / (unit * unit));
}

// Float32 buffers of one vision-tower forward over `tokens` merged tokens (tokens * merge^2 patches), attention
// computed row by row: patch input, hidden/normed/attention/MLP/rotary buffers per patch, then the merger input
// and output and one DeepStack feature per level per merged token. An estimate for planning, not a bound.
int64_t vision_activation_bytes(const VisionConfig& v, int64_t tokens) {
  const int64_t patches = tokens * v.spatial_merge_size * v.spatial_merge_size;
  const int64_t patch_in = v.in_channels * v.temporal_patch_size * v.patch_size * v.patch_size;
  const int64_t head_dim = v.num_heads > 0 ? v.hidden_size / v.num_heads : 0;
  const int64_t per_patch = patch_in + 6 * v.hidden_size + v.intermediate_size + 2 * head_dim;
  const int64_t merged_in = v.hidden_size * v.spatial_merge_size * v.spatial_merge_size;
  const int64_t levels = static_cast<int64_t>(v.deepstack_visual_indexes.size());
  const int64_t per_token = 2 * merged_in + v.out_hidden_size * (1 + levels);
  return 4 * (patches * per_patch + tokens * per_token);
}

// Float32 scratch of the text decoder for a prefill of n tokens (DecoderWorkspace, MoE scratch, last-row logits).
int64_t decoder_scratch_bytes(const TextConfig& c, int64_t n) {
  const int64_t q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  int64_t per_token = 3 * c.hidden_size + 2 * q + 2 * kv + 2 * c.head_dim;
  if (c.num_experts > 0) {
    per_token += 2 * c.num_experts + c.num_experts_per_tok * (c.hidden_size + 2) +
                 c.num_experts_per_tok * (2 * c.hidden_size + 3 * c.moe_intermediate_size);
    return 4 * (n * per_token + c.vocab_size);
  }
  return 4 * (n * per_token + 2 * c.intermediate_size * mlp_chunk_rows(n) + c.vocab_size);
}

}  // namespace

nlohmann::ordered_json describe_checkpoint(const std::string& dir, int64_t context, int64_t max_image_tokens) {
  if (!fs::is_directory(dir)) throw_error(dir, ": not a directory");
  const ModelConfig config = load_model_config(dir + "/config.json");
  const TextConfig& t = config.text_config;
  const VisionConfig& v = config.vision_config;
  const TensorStore store = TensorStore::open_dir(dir);
  const TensorTotals totals = count_tensors(store);
  int64_t files = 0;
  const int64_t disk = safetensors_file_bytes(dir, &files);

  const std::string prefix = store.contains("model.language_model.embed_tokens.weight") ? "model.language_model."
                                                                                        : "model.";
  const DType weight_dtype = store.get(prefix + "embed_tokens.weight").dtype;
  // bf16 checkpoints run with bf16 activations; fp32 and f16 ones run in float32 (model/text_decoder.cpp)
  const bool bf16 = weight_dtype == DType::BF16;
  const int64_t act_bytes = bf16 ? 2 : 4;
  const bool moe = config.is_moe();
  const int64_t active_text = moe ? totals.text_params - totals.expert_params +
                                        totals.expert_params * t.num_experts_per_tok / t.num_experts
                                  : totals.text_params;

  ordered_json j;
  j["dir"] = dir;
  j["model_type"] = config.model_type;
  j["architecture"] = moe ? "moe" : "dense";
  if (moe) {
    const TensorView* gate_up = store.find(prefix + "layers.0.mlp.experts.gate_up_proj");
    const bool out_major = gate_up && gate_up->shape == std::vector<int64_t>{t.num_experts,
                                                                             2 * t.moe_intermediate_size,
                                                                             t.hidden_size};
    j["moe"] = {{"num_experts", t.num_experts},
                {"num_experts_per_tok", t.num_experts_per_tok},
                {"moe_intermediate_size", t.moe_intermediate_size},
                {"expert_layout", out_major ? "output-major (transformers 5 save_pretrained)"
                                            : "input-major (as released)"}};
  } else {
    j["moe"] = nullptr;
  }
  j["tie_word_embeddings"] = config.tie_word_embeddings;
  j["lm_head_in_file"] = store.contains("lm_head.weight");
  j["text"] = {{"vocab_size", t.vocab_size}, {"hidden_size", t.hidden_size},
               {"num_hidden_layers", t.num_hidden_layers}, {"num_attention_heads", t.num_attention_heads},
               {"num_key_value_heads", t.num_key_value_heads}, {"head_dim", t.head_dim},
               {"intermediate_size", t.intermediate_size}, {"max_position_embeddings", t.max_position_embeddings},
               {"rope_theta", t.rope_theta}, {"mrope_section", t.mrope_section}};
  j["vision"] = {{"depth", v.depth}, {"hidden_size", v.hidden_size}, {"num_heads", v.num_heads},
                 {"intermediate_size", v.intermediate_size}, {"out_hidden_size", v.out_hidden_size},
                 {"patch_size", v.patch_size}, {"temporal_patch_size", v.temporal_patch_size},
                 {"spatial_merge_size", v.spatial_merge_size}, {"num_position_embeddings", v.num_position_embeddings},
                 {"deepstack_visual_indexes", v.deepstack_visual_indexes}};
  j["dtypes"] = totals.dtypes;
  j["activation_dtype"] = bf16 ? "bf16" : "f32";
  j["tensors"] = totals.count;
  j["tensor_bytes"] = totals.bytes;
  j["safetensors_files"] = files;
  j["bytes_on_disk"] = disk;
  j["parameters"] = {{"text_total", totals.text_params}, {"text_active", active_text},
                     {"vision", totals.vision_params}, {"total", totals.text_params + totals.vision_params},
                     {"active", active_text + totals.vision_params}};
  j["chat_template"] = template_flavour(dir);
  j["tokenizer"] = fs::exists(dir + "/tokenizer.json");

  const int64_t kv_elements_per_token = t.num_hidden_layers * 2 * t.num_key_value_heads * t.head_dim;
  const int64_t image_tokens = max_image_tokens > 0 ? max_image_tokens : preprocessor_max_image_tokens(dir, v);
  const int64_t kv = kv_elements_per_token * context * act_bytes;  // the KV cache holds the activation dtype
  const int64_t vision = vision_activation_bytes(v, image_tokens);
  const int64_t scratch = decoder_scratch_bytes(t, context);
  ordered_json memory = {
      {"weights_mapped_bytes", totals.bytes},
      {"kv_cache_bytes_per_1k_tokens", kv_elements_per_token * 1024 * act_bytes},
      {"context_tokens", context},
      {"kv_cache_bytes", kv},
      {"decoder_scratch_bytes", scratch},
      {"image_tokens", image_tokens},
      {"vision_activation_bytes", vision},
      {"total_bytes", totals.bytes + kv + scratch + vision}};
  if (moe) {
    const int64_t expert_bytes_all = totals.expert_params * static_cast<int64_t>(dtype_size(weight_dtype));
    memory["expert_bytes_read_per_token"] = expert_bytes_all * t.num_experts_per_tok / t.num_experts;
  }
  j["memory"] = memory;
  return j;
}

}  // namespace qwen3vl
