// `qwen3vl info`: the facts it reports are checked against the checkpoint files themselves.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using nlohmann::json;
using testing::run_cli;

json info_json(const std::string& model) {
  const auto result = run_cli("info --json -m " + testing::model_fixture(model), /*with_stderr=*/false);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return json::parse(result.output);
}

struct FileFacts {
  int64_t tensors = 0, bytes = 0, params = 0, expert_params = 0, vision_params = 0;
};

FileFacts facts_of(const std::string& model) {
  const TensorStore store = TensorStore::open_dir(testing::model_fixture(model));
  FileFacts f;
  for (const std::string& name : store.names()) {
    const TensorView& view = store.get(name);
    ++f.tensors;
    f.bytes += view.numel() * static_cast<int64_t>(dtype_size(view.dtype));
    f.params += view.numel();
    if (name.find(".mlp.experts.") != std::string::npos) f.expert_params += view.numel();
    if (name.rfind("model.visual.", 0) == 0) f.vision_params += view.numel();
  }
  return f;
}

TEST(InfoCli, DescribesAMoeCheckpoint) {
  const json info = info_json("tiny-moe-fp32");
  const FileFacts f = facts_of("tiny-moe-fp32");
  EXPECT_EQ(info["model_type"], "qwen3_vl_moe");
  EXPECT_EQ(info["architecture"], "moe");
  EXPECT_EQ(info["moe"]["num_experts"], 8);
  EXPECT_EQ(info["moe"]["num_experts_per_tok"], 2);
  EXPECT_EQ(info["moe"]["moe_intermediate_size"], 40);
  EXPECT_EQ(info["moe"]["expert_layout"], "input-major (as released)");
  EXPECT_EQ(info["tie_word_embeddings"], true);
  EXPECT_EQ(info["lm_head_in_file"], false);
  EXPECT_EQ(info["tensors"], f.tensors);
  EXPECT_EQ(info["dtypes"], (json{{"F32", f.tensors}}));
  EXPECT_EQ(info["activation_dtype"], "f32");
  EXPECT_EQ(info["tensor_bytes"], f.bytes);
  EXPECT_EQ(info["bytes_on_disk"],
            std::filesystem::file_size(testing::model_fixture("tiny-moe-fp32") + "/model.safetensors"));
  EXPECT_EQ(info["parameters"]["total"], f.params);
  EXPECT_EQ(info["parameters"]["vision"], f.vision_params);
  // active: everything but the experts, plus k/E = 2/8 of them
  EXPECT_EQ(info["parameters"]["text_active"], f.params - f.vision_params - f.expert_params + f.expert_params / 4);
  EXPECT_EQ(info["chat_template"], "none");
  EXPECT_EQ(info["tokenizer"], false);
  const json& memory = info["memory"];
  EXPECT_EQ(memory["weights_mapped_bytes"], f.bytes);
  EXPECT_EQ(memory["expert_bytes_read_per_token"], f.expert_params * 4 / 4);
  EXPECT_EQ(memory["kv_cache_bytes_per_1k_tokens"], 3 * 2 * 2 * 32 * 1024 * 4);  // layers * (k, v) * kv * hd * f32
  EXPECT_EQ(memory["context_tokens"], 4096);
  EXPECT_EQ(memory["image_tokens"], 64);  // its preprocessor_config.json allows 65536 pixels = 64 merged tokens
  EXPECT_EQ(memory["total_bytes"].get<int64_t>(),
            f.bytes + memory["kv_cache_bytes"].get<int64_t>() + memory["decoder_scratch_bytes"].get<int64_t>() +
                memory["vision_activation_bytes"].get<int64_t>());
  EXPECT_EQ(info["text"]["num_hidden_layers"], 3);
  EXPECT_EQ(info["vision"]["depth"], 2);
  EXPECT_EQ(info["vision"]["deepstack_visual_indexes"], (json{0, 1}));

  EXPECT_EQ(info_json("tiny-moe-bf16")["moe"]["expert_layout"], "output-major (transformers 5 save_pretrained)");
}

TEST(InfoCli, DescribesADenseBf16Checkpoint) {
  const json info = info_json("tiny-realtok-bf16");
  EXPECT_EQ(info["architecture"], "dense");
  EXPECT_TRUE(info["moe"].is_null());
  EXPECT_EQ(info["parameters"]["active"], info["parameters"]["total"]);
  EXPECT_EQ(info["chat_template"], "Instruct");
  EXPECT_EQ(info["tokenizer"], true);
  EXPECT_EQ(info["activation_dtype"], "bf16");
  EXPECT_EQ(info["memory"]["kv_cache_bytes_per_1k_tokens"], 3 * 2 * 2 * 16 * 1024 * 2);  // bf16
  EXPECT_FALSE(info["memory"].contains("kv_cache_bytes_per_1k_tokens_engine_f32"));  // the engine stores bf16 too
  EXPECT_EQ(info_json("tiny-fp32-untied-sharded")["safetensors_files"], 5);
  EXPECT_EQ(info_json("tiny-fp32-untied-sharded")["lm_head_in_file"], true);
}

TEST(InfoCli, PlainTextAndOptions) {
  const auto text = run_cli("info -m " + testing::model_fixture("tiny-moe-fp32") + " --context 1024", false);
  EXPECT_EQ(text.exit_code, 0);
  for (const char* needle : {"qwen3_vl_moe, mixture of experts: 8 experts, top-2", "embeddings:        tied",
                             "KV cache 1.50 MiB per 1k tokens", "1024-token context", "active per token"})
    EXPECT_NE(text.output.find(needle), std::string::npos) << needle << " in:\n" << text.output;
  const auto small_image = run_cli("info --json --max-image-tokens 64 -m " + testing::model_fixture("tiny-moe-fp32"),
                                   false);
  EXPECT_EQ(json::parse(small_image.output)["memory"]["image_tokens"], 64);
}

TEST(InfoCli, MissingDirectoryIsAOneLineError) {
  const auto result = run_cli("info -m /nonexistent/checkpoint");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.output, "error: /nonexistent/checkpoint: not a directory\n");
}

}  // namespace
}  // namespace qwen3vl
