#include "io/model_config.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_fields.h"

namespace qwen3vl {
namespace {

using json = nlohmann::json;

// rope_scaling (transformers 4.x) or rope_parameters (transformers 5.x), with rope_theta inside or beside it.
void read_rope(const std::string& file, const json& text, TextConfig* config) {
  FieldReader reader(file, text, "text_config");
  config->rope_theta = reader.number_or("rope_theta", config->rope_theta);
  const char* key = text.contains("rope_parameters") ? "rope_parameters" : "rope_scaling";
  if (!reader.has(key)) {
    config->mrope_section = {24, 20, 20};  // transformers' default for Qwen3-VL
    return;
  }
  const json& rope = reader.object(key);
  FieldReader rope_reader(file, rope, std::string("text_config.") + key);
  const std::string type = rope_reader.string_or("rope_type", rope_reader.string_or("type", "default"));
  if (type != "default")
    rope_reader.fail("rope_type", ("\"" + type + "\" is not supported (only \"default\")").c_str());
  config->rope_theta = rope_reader.number_or("rope_theta", config->rope_theta);
  config->mrope_interleaved = rope_reader.boolean_or("mrope_interleaved", true);
  config->mrope_section = rope_reader.integer_list_or_empty("mrope_section");
  if (config->mrope_section.empty()) config->mrope_section = {24, 20, 20};
}

TextConfig read_text_config(const std::string& file, const json& text, bool moe) {
  FieldReader reader(file, text, "text_config");
  TextConfig config;
  config.vocab_size = reader.positive("vocab_size");
  config.hidden_size = reader.positive("hidden_size");
  config.num_hidden_layers = reader.positive("num_hidden_layers");
  config.num_attention_heads = reader.positive("num_attention_heads");
  config.num_key_value_heads = reader.positive("num_key_value_heads");
  if (config.num_attention_heads % config.num_key_value_heads != 0)
    reader.fail("num_attention_heads", "must be a multiple of num_key_value_heads");
  config.head_dim = reader.has("head_dim") ? reader.positive("head_dim")
                                           : config.hidden_size / config.num_attention_heads;
  config.rms_norm_eps = reader.number_or("rms_norm_eps", 1e-6);
  config.max_position_embeddings = reader.integer_or("max_position_embeddings", 262144);
  if (reader.has("pad_token_id")) config.pad_token_id = reader.integer("pad_token_id");
  if (moe) {
    config.num_experts = reader.has("num_experts") ? reader.positive("num_experts")
                                                   : reader.positive("num_local_experts");
    config.num_experts_per_tok = reader.positive("num_experts_per_tok");
    config.moe_intermediate_size = reader.positive("moe_intermediate_size");
    config.norm_topk_prob = reader.boolean_or("norm_topk_prob", true);
    config.intermediate_size = reader.integer_or("intermediate_size", 0);
  } else {
    config.intermediate_size = reader.positive("intermediate_size");
  }
  read_rope(file, text, &config);
  int64_t section_sum = 0;
  for (int64_t part : config.mrope_section) section_sum += part;
  if (config.mrope_section.size() != 3 || section_sum * 2 != config.head_dim)
    throw_error(file, ": text_config mrope_section must have 3 parts summing to head_dim/2 = ",
                config.head_dim / 2);
  return config;
}

VisionConfig read_vision_config(const std::string& file, const json& vision) {
  FieldReader reader(file, vision, "vision_config");
  VisionConfig config;
  config.depth = reader.positive("depth");
  config.hidden_size = reader.positive("hidden_size");
  config.intermediate_size = reader.positive("intermediate_size");
  config.num_heads = reader.positive("num_heads");
  config.out_hidden_size = reader.positive("out_hidden_size");
  config.patch_size = reader.integer_or("patch_size", 16);
  config.temporal_patch_size = reader.integer_or("temporal_patch_size", 2);
  config.spatial_merge_size = reader.integer_or("spatial_merge_size", 2);
  config.in_channels = reader.integer_or("in_channels", 3);
  config.num_position_embeddings = reader.positive("num_position_embeddings");
  config.deepstack_visual_indexes = reader.integer_list_or_empty("deepstack_visual_indexes");
  config.hidden_act = reader.string_or("hidden_act", "gelu_pytorch_tanh");
  if (reader.has("rope_parameters")) {
    FieldReader rope(file, reader.object("rope_parameters"), "vision_config.rope_parameters");
    config.rope_theta = rope.number_or("rope_theta", config.rope_theta);
  }
  return config;
}

// Checkpoints this engine cannot run are refused by the field that says so (transformers' Qwen3VLConfig and
// Qwen3VLTextConfig) rather than later by a tensor's dtype or shape.
void refuse_quantized(const std::string& path, const json& root, const json& text) {
  // PreTrainedConfig.quantization_config, written by transformers' quantizers at the top level (some converters put
  // it in text_config): FP8, bitsandbytes, AWQ, GPTQ... need kernels this engine does not have.
  for (const json* where : {&root, &text}) {
    if (!where->contains("quantization_config")) continue;
    const json& quant = (*where)["quantization_config"];
    const std::string method = quant.is_object() && quant.contains("quant_method") && quant["quant_method"].is_string()
                                   ? quant["quant_method"].get<std::string>()
                                   : std::string("unknown");
    throw_error(path, ": ", where == &text ? "text_config." : "", "quantization_config (quant_method \"", method,
                "\") is not supported: use the unquantized checkpoint (qwen3vl quantize makes q8 / q4 from it)");
  }
}

void refuse_unsupported(const std::string& path, const json& text, const ModelConfig& config) {
  FieldReader text_reader(path, text, "text_config");
  const std::string act = text_reader.string_or("hidden_act", "silu");
  if (act != "silu")
    throw_error(path, ": text_config.hidden_act \"", act, "\" is not supported (Qwen3-VL's MLP uses \"silu\")");
  if (text_reader.boolean_or("attention_bias", false))
    text_reader.fail("attention_bias", "true is not supported (Qwen3-VL's attention projections have no bias)");
  if (config.vision_config.out_hidden_size != config.text_config.hidden_size)
    throw_error(path, ": vision_config.out_hidden_size ", config.vision_config.out_hidden_size,
                " does not match text_config.hidden_size ", config.text_config.hidden_size,
                " (the vision tower's rows are the language model's embeddings)");
}

}  // namespace

ModelConfig load_model_config(const std::string& path) {
  const json root = read_json_file(path);
  FieldReader reader(path, root, "");
  ModelConfig config;
  config.path = path;
  if (!reader.has("model_type")) reader.fail("model_type", "is missing");
  config.model_type = reader.string_or("model_type", "");
  if (config.model_type != "qwen3_vl" && config.model_type != "qwen3_vl_moe")
    throw_error(path, ": model_type \"", config.model_type,
                "\" is not supported (expected \"qwen3_vl\" or \"qwen3_vl_moe\")");
  const json& text = reader.object("text_config");
  refuse_quantized(path, root, text);
  config.text_config = read_text_config(path, text, config.is_moe());
  config.vision_config = read_vision_config(path, reader.object("vision_config"));
  // tie_word_embeddings sits at the top level in released files; transformers 5 may also write it in text_config.
  FieldReader text_reader(path, text, "text_config");
  config.tie_word_embeddings =
      reader.boolean_or("tie_word_embeddings", text_reader.boolean_or("tie_word_embeddings", false));
  config.image_token_id = reader.integer_or("image_token_id", config.image_token_id);
  config.video_token_id = reader.integer_or("video_token_id", config.video_token_id);
  config.vision_start_token_id = reader.integer_or("vision_start_token_id", config.vision_start_token_id);
  config.vision_end_token_id = reader.integer_or("vision_end_token_id", config.vision_end_token_id);
  config.eos_token_id = text_reader.integer_list_or_empty("eos_token_id");
  refuse_unsupported(path, text, config);
  return config;
}

GenerationConfig load_generation_config(const std::string& path) {
  GenerationConfig config;
  if (!std::ifstream(path).good()) return config;
  const json root = read_json_file(path);
  FieldReader reader(path, root, "");
  config.eos_token_id = reader.integer_list_or_empty("eos_token_id");
  if (reader.has("bos_token_id")) config.bos_token_id = reader.integer("bos_token_id");
  if (reader.has("pad_token_id")) config.pad_token_id = reader.integer("pad_token_id");
  config.do_sample = reader.boolean_or("do_sample", false);
  config.temperature = reader.number_or("temperature", 1.0);
  config.top_k = reader.integer_or("top_k", 50);
  config.top_p = reader.number_or("top_p", 1.0);
  config.min_p = reader.number_or("min_p", 0.0);
  config.repetition_penalty = reader.number_or("repetition_penalty", 1.0);
  if (reader.has("max_new_tokens")) config.max_new_tokens = reader.integer("max_new_tokens");
  return config;
}

}  // namespace qwen3vl
