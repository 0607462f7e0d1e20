// `qwen3vl run --lora DIR[:SCALE]` on the tiny real-tokenizer checkpoint with an adapter written here: the adapter
// changes the greedy reply, scale 0 gives the base reply byte for byte, and a bad adapter ends with one error line
// naming the adapter file and exit code 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "test_util.h"
#include "unit/kernel_test_util.h"

namespace qwen3vl {
namespace {

using testing::run_cli;
using testing::TempDir;

std::string model_dir() { return testing::model_fixture("tiny-realtok-bf16"); }


// LoRA r=4 on every layer's q_proj and down_proj (hidden 32, q width 64, intermediate 64), F32 as PEFT saves them.
std::string write_adapter(const TempDir& dir, int64_t r_in_config) {
  const std::string folder = dir.file("adapter");
  std::filesystem::create_directories(folder);
  testing::write_file(folder + "/adapter_config.json",
                      nlohmann::json{{"peft_type", "LORA"}, {"r", r_in_config}, {"lora_alpha", 8}}.dump());
  std::vector<std::vector<float>> values;
  std::vector<TensorToWrite> tensors;
  uint32_t seed = 1;
  for (int layer = 0; layer < 3; ++layer)
    for (const auto& [module, in, out] : std::vector<std::tuple<std::string, int64_t, int64_t>>{
             {"self_attn.q_proj", 32, 64}, {"mlp.down_proj", 64, 32}}) {
      const std::string path =
          "base_model.model.model.language_model.layers." + std::to_string(layer) + "." + module;
      values.push_back(testing::random_floats(4 * in, seed++, 0.5f));
      tensors.push_back({path + ".lora_A.weight", "F32", {4, in}, values.back().data(), values.back().size() * 4});
      values.push_back(testing::random_floats(out * 4, seed++, 0.5f));
      tensors.push_back({path + ".lora_B.weight", "F32", {out, 4}, values.back().data(), values.back().size() * 4});
    }
  write_safetensors(folder + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  return folder;
}

std::string greedy(const std::string& extra) {
  const auto result = run_cli("run -m " + model_dir() + " -p 'Describe a bicycle.' --temp 0 -n 12 " + extra,
                              /*with_stderr=*/false);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return result.output;
}

TEST(LoraCli, AdapterChangesTheReplyAndScaleZeroIsTheBase) {
  TempDir dir;
  const std::string adapter = write_adapter(dir, 4);
  const std::string base = greedy("");
  EXPECT_NE(greedy("--lora " + adapter), base);
  EXPECT_EQ(greedy("--lora " + adapter + ":0"), base);
  EXPECT_EQ(greedy("--lora " + adapter + ":0.5"), greedy("--lora " + adapter + ":0.25 --lora " + adapter + ":0.25"));
}

TEST(LoraCli, BadAdapterIsOneErrorLine) {
  TempDir dir;
  const std::string adapter = write_adapter(dir, 8);  // the tensors have rank 4
  const auto result = run_cli("run -m " + model_dir() + " -p hi -n 2 --lora " + adapter);
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_EQ(result.output.rfind("error: ", 0), 0u) << result.output;
  EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << result.output;
  EXPECT_NE(result.output.find("adapter/adapter_model.safetensors"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("r = 8"), std::string::npos) << result.output;
  const auto no_folder = run_cli("run -m " + model_dir() + " -p hi -n 2 --lora " + dir.file("none") + ":2");
  EXPECT_EQ(no_folder.exit_code, 1);
  EXPECT_NE(no_folder.output.find("none/adapter_config.json"), std::string::npos) << no_folder.output;
}

}  // namespace
}  // namespace qwen3vl
