// PEFT adapters read and bound (model/lora_adapter.h, engine/adapters.h) on the tiny fp32 checkpoint, with adapter
// folders written here: an adapter equals its explicit merge W + scaling * B A, its scale multiplies PEFT's
// lora_alpha / r, scale 0 is the base bit for bit, only adapters that touch the tower change image features, and
// every bad adapter is refused with one line naming the adapter file and the tensor or field.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/adapters.h"
#include "engine/loaded_model.h"
#include "golden_util.h"
#include "kernel_test_util.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using testing::TempDir;

const LoadedModel& tiny_model() {
  static const std::unique_ptr<LoadedModel> model = [] {
    LoadOptions options;
    options.require_tokenizer = false;
    options.threads = 2;
    return load_model(testing::model_fixture("tiny-fp32-tied"), options);
  }();
  return *model;
}

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// An adapter folder: adapter_config.json from `config` (peft_type LORA added) and F32 tensors.
std::string write_adapter(const TempDir& dir, const std::string& name, nlohmann::json config,
                          const std::vector<Tensor>& tensors) {
  const std::string folder = dir.file(name);
  std::filesystem::create_directories(folder);
  if (!config.contains("peft_type")) config["peft_type"] = "LORA";
  testing::write_file(folder + "/adapter_config.json", config.dump());
  std::vector<TensorToWrite> out;
  for (const Tensor& t : tensors)
    out.push_back({t.name, "F32", t.shape, t.values.data(), t.values.size() * sizeof(float)});
  write_safetensors(folder + "/adapter_model.safetensors", out, {{"format", "pt"}});
  return folder;
}

const std::string kQ = "base_model.model.model.language_model.layers.0.self_attn.q_proj";

// q_proj of layer 0 is [128, 64]: lora_A [r, 64], lora_B [128, r].
std::vector<Tensor> q_proj_lora(int64_t r, uint32_t seed) {
  return {{kQ + ".lora_A.weight", {r, 64}, testing::random_floats(r * 64, seed, 0.2f)},
          {kQ + ".lora_B.weight", {128, r}, testing::random_floats(128 * r, seed + 1, 0.2f)}};
}

std::vector<float> last_logits(const LoadedModel& model, const TextWeights& weights) {
  const TextDecoder decoder(model.config, weights, model.decoder->context());
  const std::vector<int32_t> ids = {1, 5, 9, 200, 7};
  std::vector<float> embeds(ids.size() * 64), logits;
  decoder.embed(ids.data(), static_cast<int64_t>(ids.size()), embeds.data());
  KVCache cache = decoder.make_cache(8);
  DecoderWorkspace work;
  decoder.forward(embeds.data(), static_cast<int64_t>(ids.size()), text_positions(0, static_cast<int64_t>(ids.size())),
                  cache, work, LogitsRows::All, logits);
  return logits;
}

TEST(LoraAdapter, EqualsItsExplicitMergeAndScalesLikePeft) {
  const LoadedModel& model = tiny_model();
  TempDir dir;
  const std::vector<Tensor> tensors = q_proj_lora(4, 1);
  const std::string folder = write_adapter(dir, "q", {{"r", 4}, {"lora_alpha", 6}}, tensors);
  const auto adapter = load_adapter(model, folder);
  ASSERT_EQ(adapter->modules().size(), 1u);
  EXPECT_DOUBLE_EQ(adapter->modules()[0].scaling, 1.5);  // lora_alpha / r
  for (double scale : {1.0, 0.5}) {
    const auto adapted = bind_adapters(model, {{adapter, scale}});
    // W + (scaling * scale) * B A, as merge_and_unload's get_delta_weight computes it in float
    const float s = static_cast<float>(1.5 * scale);
    std::vector<float> merged(128 * 64);
    convert_to_f32(DType::F32, model.text_weights.layers[0].q_proj.data, merged.data(), merged.size());
    for (int64_t j = 0; j < 128; ++j)
      for (int64_t c = 0; c < 64; ++c) {
        float delta = 0.f;
        for (int64_t k = 0; k < 4; ++k) delta += tensors[1].values[j * 4 + k] * tensors[0].values[k * 64 + c];
        merged[j * 64 + c] += delta * s;
      }
    TextWeights merged_weights = model.text_weights;
    merged_weights.layers[0].q_proj.data = merged.data();
    const std::vector<float> ours = last_logits(model, adapted->text());
    const std::vector<float> reference = last_logits(model, merged_weights);
    const std::vector<float> base = last_logits(model, model.text_weights);
    EXPECT_LE(testing::max_abs_diff(ours, reference), 2e-5) << "scale " << scale;
    EXPECT_GT(testing::max_abs_diff(ours, base), 1e-3) << "the adapter must change the logits";
  }
  const auto zero = bind_adapters(model, {{adapter, 0.0}});
  EXPECT_EQ(last_logits(model, zero->text()), last_logits(model, model.text_weights));
  EXPECT_FALSE(zero->touches_vision());
}

TEST(LoraAdapter, RsloraAndPatternsSetTheScaling) {
  const LoadedModel& model = tiny_model();
  TempDir dir;
  const auto rslora = load_adapter(model, write_adapter(dir, "rs", {{"r", 4}, {"lora_alpha", 6}, {"use_rslora", true}},
                                                        q_proj_lora(4, 2)));
  EXPECT_DOUBLE_EQ(rslora->modules()[0].scaling, 3.0);  // lora_alpha / sqrt(r)
  const auto patterned = load_adapter(
      model, write_adapter(dir, "pattern",
                           {{"r", 8}, {"lora_alpha", 8}, {"rank_pattern", {{"q_proj", 4}}},
                            {"alpha_pattern", {{"layers\\.0\\.self_attn\\.q_proj", 2}}}},
                           q_proj_lora(4, 3)));
  EXPECT_DOUBLE_EQ(patterned->modules()[0].scaling, 0.5);  // alpha 2 / r 4
}

TEST(LoraAdapter, OnlyAdaptersOnTheTowerChangeImageFeatures) {
  const LoadedModel& model = tiny_model();
  TempDir dir;
  const std::string qkv = "base_model.model.model.visual.blocks.0.attn.qkv";  // [96, 32]
  const auto tower = load_adapter(model, write_adapter(dir, "tower", {{"r", 2}, {"lora_alpha", 2}},
                                                       {{qkv + ".lora_A.weight", {2, 32}, testing::random_floats(64, 4)},
                                                        {qkv + ".lora_B.weight", {96, 2}, testing::random_floats(192, 5)}}));
  EXPECT_TRUE(tower->touches_vision());
  const auto text_only = load_adapter(model, write_adapter(dir, "text", {{"r", 4}, {"lora_alpha", 4}}, q_proj_lora(4, 6)));
  EXPECT_FALSE(text_only->touches_vision());
  const auto adapted = bind_adapters(model, {{text_only, 1.0}, {tower, 1.0}});
  ASSERT_NE(adapted->vision(), nullptr);
  EXPECT_TRUE(adapted->touches_vision());
  const std::vector<GridTHW> grids = {{1, 4, 4}};
  const std::vector<float> pixels = testing::random_floats(16 * 1536, 7);
  const VisionEncoder adapted_tower(model.config, *adapted->vision(), model.vision->context());
  const VisionOutput ours = adapted_tower.forward(pixels.data(), grids);
  const VisionOutput base = model.vision->forward(pixels.data(), grids);
  EXPECT_GT(testing::max_abs_diff(ours.embeds, base.embeds), 1e-4);
}

void expect_refused(const LoadedModel& model, const std::string& folder, std::initializer_list<std::string> needles) {
  try {
    load_adapter(model, folder);
    ADD_FAILURE() << folder << " was accepted";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (const std::string& needle : needles)
      EXPECT_NE(message.find(needle), std::string::npos) << "missing '" << needle << "' in: " << message;
  }
}

TEST(LoraAdapter, BadAdaptersAreRefusedNamingFileAndTensor) {
  const LoadedModel& model = tiny_model();
  TempDir dir;
  const nlohmann::json config = {{"r", 4}, {"lora_alpha", 4}, {"base_model_name_or_path", "Qwen/Qwen3-VL-8B-Instruct"}};
  std::vector<Tensor> wrong_rank = q_proj_lora(4, 8);
  wrong_rank[1] = {kQ + ".lora_B.weight", {128, 3}, testing::random_floats(128 * 3, 9)};
  expect_refused(model, write_adapter(dir, "rank", config, wrong_rank),
                 {"rank/adapter_model.safetensors", "layers.0.self_attn.q_proj", "rank mismatch"});
  expect_refused(model, write_adapter(dir, "r", {{"r", 8}, {"lora_alpha", 4}}, q_proj_lora(4, 10)),
                 {"r/adapter_model.safetensors", "q_proj has rank 4", "r = 8"});
  const std::string unknown = "base_model.model.model.language_model.layers.0.self_attn.qkv_proj";
  expect_refused(model, write_adapter(dir, "unknown", config,
                                      {{unknown + ".lora_A.weight", {4, 64}, std::vector<float>(256)},
                                       {unknown + ".lora_B.weight", {128, 4}, std::vector<float>(512)}}),
                 {"unknown/adapter_model.safetensors", unknown + ".lora_A.weight", "not a linear layer",
                  "Qwen/Qwen3-VL-8B-Instruct"});
  const std::vector<Tensor> wide = {{kQ + ".lora_A.weight", {4, 2048}, std::vector<float>(4 * 2048)},
                                    {kQ + ".lora_B.weight", {4096, 4}, std::vector<float>(4096 * 4)}};
  expect_refused(model, write_adapter(dir, "shapes", config, wide),
                 {"shapes/adapter_model.safetensors", "q_proj.lora_A.weight takes 2048 inputs", "64",
                  "made for Qwen/Qwen3-VL-8B-Instruct"});
  expect_refused(model, write_adapter(dir, "dora", {{"r", 4}, {"lora_alpha", 4}, {"use_dora", true}}, q_proj_lora(4, 11)),
                 {"dora/adapter_model.safetensors", "no lora_magnitude_vector"});
  expect_refused(model, write_adapter(dir, "ia3", {{"peft_type", "IA3"}}, q_proj_lora(4, 12)),
                 {"ia3/adapter_config.json", "peft_type", "IA3"});
  const std::string missing = write_adapter(dir, "missing", config, q_proj_lora(4, 13));
  std::filesystem::remove(missing + "/adapter_model.safetensors");
  expect_refused(model, missing, {"missing/adapter_model.safetensors", "missing"});
  const std::string corrupt = write_adapter(dir, "corrupt", config, q_proj_lora(4, 14));
  testing::write_file(corrupt + "/adapter_model.safetensors",
                      testing::read_file(corrupt + "/adapter_model.safetensors").substr(0, 100));
  expect_refused(model, corrupt, {"corrupt/adapter_model.safetensors"});
  expect_refused(model, dir.file("nowhere"), {"nowhere/adapter_config.json", "cannot open"});
}

}  // namespace
}  // namespace qwen3vl
