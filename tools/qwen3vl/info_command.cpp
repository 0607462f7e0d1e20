#include "info_command.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "engine/checkpoint_info.h"

namespace qwen3vl {
namespace cli {

CLI::App* add_info_command(CLI::App& app, InfoOptions& o) {
  CLI::App* info = app.add_subcommand("info", "Describe a checkpoint: architecture, sizes, dtypes, memory needed");
  info->add_option("-m,--model", o.model_dir, "Checkpoint directory (Hugging Face layout)")->required();
  info->add_flag("--json", o.json, "Print one JSON object instead of text");
  info->add_option("--context", o.context, "Context length (tokens) the memory estimate plans for (default 4096)")
      ->check(CLI::PositiveNumber);
  info->add_option("--max-image-tokens", o.max_image_tokens,
                   "Merged visual tokens of the image the vision budget plans for (default: the maximum of "
                   "preprocessor_config.json, else 16384)")
      ->check(CLI::PositiveNumber);
  return info;
}

namespace {

using nlohmann::ordered_json;

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024.0 && unit < 4) {
    bytes /= 1024.0;
    ++unit;
  }
  char out[32];
  std::snprintf(out, sizeof out, unit == 0 ? "%.0f %s" : "%.2f %s", bytes, units[unit]);
  return out;
}

std::string human_count(double count) {
  char out[32];
  if (count >= 1e9) std::snprintf(out, sizeof out, "%.2f B", count / 1e9);
  else if (count >= 1e6) std::snprintf(out, sizeof out, "%.2f M", count / 1e6);
  else if (count >= 1e3) std::snprintf(out, sizeof out, "%.1f K", count / 1e3);
  else std::snprintf(out, sizeof out, "%.0f", count);
  return out;
}

std::string join(const std::vector<int64_t>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return "[" + out + "]";
}

void print_text(const ordered_json& j) {
  const auto& t = j["text"];
  const auto& v = j["vision"];
  const auto& p = j["parameters"];
  const auto& m = j["memory"];
  auto line = [](const char* key, const std::string& value) { std::printf("%-18s %s\n", key, value.c_str()); };
  line("checkpoint:", j["dir"].get<std::string>());
  std::string kind = j["model_type"].get<std::string>() + ", ";
  if (j["moe"].is_null()) {
    kind += "dense";
  } else {
    const auto& e = j["moe"];
    kind += "mixture of experts: " + std::to_string(e["num_experts"].get<int64_t>()) + " experts, top-" +
            std::to_string(e["num_experts_per_tok"].get<int64_t>()) + ", expert FFN " +
            std::to_string(e["moe_intermediate_size"].get<int64_t>()) + ", " +
            e["expert_layout"].get<std::string>();
  }
  line("model:", kind);
  line("parameters:", human_count(p["total"].get<double>()) + " total (text " +
                          human_count(p["text_total"].get<double>()) + ", vision " +
                          human_count(p["vision"].get<double>()) + "); active per token " +
                          human_count(p["active"].get<double>()) + " (text " +
                          human_count(p["text_active"].get<double>()) + ")");
  line("embeddings:", std::string(j["tie_word_embeddings"].get<bool>() ? "tied" : "untied") +
                          (j["lm_head_in_file"].get<bool>() ? " (lm_head.weight in the file)" : ""));
  line("text:", std::to_string(t["num_hidden_layers"].get<int64_t>()) + " layers, hidden " +
                    std::to_string(t["hidden_size"].get<int64_t>()) + ", heads " +
                    std::to_string(t["num_attention_heads"].get<int64_t>()) + " / kv " +
                    std::to_string(t["num_key_value_heads"].get<int64_t>()) + " x " +
                    std::to_string(t["head_dim"].get<int64_t>()) +
                    (j["moe"].is_null() ? ", intermediate " + std::to_string(t["intermediate_size"].get<int64_t>())
                                        : std::string()) +
                    ", vocab " +
                    std::to_string(t["vocab_size"].get<int64_t>()) + ", context " +
                    std::to_string(t["max_position_embeddings"].get<int64_t>()) + ", mrope " +
                    join(t["mrope_section"].get<std::vector<int64_t>>()));
  line("vision:", std::to_string(v["depth"].get<int64_t>()) + " blocks, hidden " +
                      std::to_string(v["hidden_size"].get<int64_t>()) + ", heads " +
                      std::to_string(v["num_heads"].get<int64_t>()) + ", intermediate " +
                      std::to_string(v["intermediate_size"].get<int64_t>()) + ", out " +
                      std::to_string(v["out_hidden_size"].get<int64_t>()) + ", patch " +
                      std::to_string(v["patch_size"].get<int64_t>()) + " x temporal " +
                      std::to_string(v["temporal_patch_size"].get<int64_t>()) + ", merge " +
                      std::to_string(v["spatial_merge_size"].get<int64_t>()) + ", deepstack " +
                      join(v["deepstack_visual_indexes"].get<std::vector<int64_t>>()));
  std::string dtypes;
  for (const auto& [name, count] : j["dtypes"].items())
    dtypes += (dtypes.empty() ? "" : ", ") + name + " x " + std::to_string(count.get<int64_t>());
  line("dtypes:", dtypes + "; activations " + j["activation_dtype"].get<std::string>());
  line("files:", std::to_string(j["tensors"].get<int64_t>()) + " tensors (" +
                     human_bytes(j["tensor_bytes"].get<double>()) + ") in " +
                     std::to_string(j["safetensors_files"].get<int64_t>()) + " safetensors file(s), " +
                     human_bytes(j["bytes_on_disk"].get<double>()) + " on disk");
  line("chat template:", j["chat_template"].get<std::string>() +
                             (j["tokenizer"].get<bool>() ? "" : " (no tokenizer.json: cannot run prompts)"));
  line("memory:", "weights " + human_bytes(m["weights_mapped_bytes"].get<double>()) + " mapped" +
                      (m.contains("expert_bytes_read_per_token")
                           ? " (experts read per token: " +
                                 human_bytes(m["expert_bytes_read_per_token"].get<double>()) + ")"
                           : ""));
  line("", "KV cache " + human_bytes(m["kv_cache_bytes_per_1k_tokens"].get<double>()) + " per 1k tokens at " +
               j["activation_dtype"].get<std::string>());
  line("", "vision budget " + human_bytes(m["vision_activation_bytes"].get<double>()) + " for one image of " +
               std::to_string(m["image_tokens"].get<int64_t>()) + " visual tokens");
  line("", "total for a " + std::to_string(m["context_tokens"].get<int64_t>()) + "-token context: " +
               human_bytes(m["total_bytes"].get<double>()) + " (weights + KV " +
               human_bytes(m["kv_cache_bytes"].get<double>()) + " + decoder scratch " +
               human_bytes(m["decoder_scratch_bytes"].get<double>()) + " + vision budget)");
}

}  // namespace

int info_command(const InfoOptions& o) {
  const ordered_json j = describe_checkpoint(o.model_dir, o.context, o.max_image_tokens);
  if (o.json) {
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    print_text(j);
  }
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
