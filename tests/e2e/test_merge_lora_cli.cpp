// `qwen3vl merge-lora` against PEFT's merge_and_unload() (fixtures by scripts/reference/make_lora_goldens.py): for
// every test adapter with a merge golden, each changed tensor within 1 ulp of PEFT's (fp32: every weight; bf16: at
// least 99.9% bit-identical), every other tensor byte-identical to the base, the same tensor names and shards as the
// input (what transformers needs to load it without missing or unexpected keys), a tied head kept tied, and the
// merged checkpoint's logits equal to PEFT's merged logits within the fp32 bar. Bad runs leave no output folder.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/adapters.h"
#include "engine/loaded_model.h"
#include "golden_util.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using nlohmann::json;
using testing::run_cli;
using testing::TempDir;

const json& lora_index() {
  static const json index = json::parse(testing::read_file(testing::fixtures_dir() + "/lora/index.json"));
  return index;
}

std::vector<float> floats_of(const TensorView& view) {
  std::vector<float> values(static_cast<size_t>(view.numel()));
  convert_to_f32(view.dtype, view.data, values.data(), values.size());
  return values;
}

// Distance in units in the last place of the dtype (0: bit-identical).
int64_t ulps(float a, float b, DType dtype) {
  if (dtype == DType::BF16) {
    const int32_t x = static_cast<int16_t>(f32_to_bf16(a)), y = static_cast<int16_t>(f32_to_bf16(b));
    return std::abs((x < 0 ? INT16_MIN - x : x) - (y < 0 ? INT16_MIN - y : y));
  }
  int32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  return std::llabs(static_cast<int64_t>(x < 0 ? INT32_MIN - x : x) - (y < 0 ? INT32_MIN - y : y));
}

std::vector<float> prefill_logits(const std::string& dir, const std::vector<int32_t>& ids) {
  LoadOptions options;
  options.require_tokenizer = false;
  const auto model = load_model(dir, options);
  std::vector<float> embeds(ids.size() * static_cast<size_t>(model->config.text_config.hidden_size)), logits;
  const int64_t n = static_cast<int64_t>(ids.size());
  model->decoder->embed(ids.data(), n, embeds.data());
  KVCache cache = model->decoder->make_cache(n);
  DecoderWorkspace work;
  model->decoder->forward(embeds.data(), n, text_positions(0, n), cache, work, LogitsRows::All, logits);
  return logits;
}

void check_merge(const json& entry) {
  SCOPED_TRACE(entry["name"].get<std::string>());
  const json& merge = entry["merge"];
  const std::string base = testing::model_fixture(entry["base"]);
  TempDir dir;
  const std::string out = dir.file("merged");
  const auto result = run_cli("merge-lora -m " + base + " --lora " + testing::fixtures_dir() + "/" +
                              entry["dir"].get<std::string>() + " -o " + out);
  ASSERT_EQ(result.exit_code, 0) << result.output;

  const TensorStore ours = TensorStore::open_dir(out), input = TensorStore::open_dir(base);
  EXPECT_EQ(ours.names(), input.names()) << "the merged checkpoint must have exactly the base's tensors";
  EXPECT_EQ(std::filesystem::exists(out + "/model.safetensors.index.json"),
            std::filesystem::exists(base + "/model.safetensors.index.json"));
  const DType dtype = merge["dtype"] == "bfloat16" ? DType::BF16 : DType::F32;
  int64_t total = 0, identical = 0;
  double worst_ulps = 0.0;
  for (const std::string& name : ours.names()) {
    const TensorView& got = ours.get(name);
    const auto changed = merge["changed_tensors"].find(name);
    if (changed == merge["changed_tensors"].end()) {
      const TensorView& was = input.get(name);
      EXPECT_TRUE(got.dtype == was.dtype && got.bytes == was.bytes && std::memcmp(got.data, was.data, got.bytes) == 0)
          << name << " changed although the adapter does not touch it";
      continue;
    }
    const SafetensorsFile golden_file(testing::fixtures_dir() + "/" + (*changed)["file"].get<std::string>());
    const std::string key = changed->contains("key") ? (*changed)["key"].get<std::string>() : name;
    const std::vector<float> theirs = floats_of(golden_file.tensors().at(key)), mine = floats_of(got);
    const std::vector<float> was = floats_of(input.get(name));
    ASSERT_EQ(mine.size(), theirs.size()) << name;
    EXPECT_EQ(got.dtype, dtype) << name;
    for (size_t i = 0; i < mine.size(); ++i) {
      if (dtype == DType::BF16) {
        const int64_t distance = ulps(mine[i], theirs[i], dtype);
        worst_ulps = std::max(worst_ulps, static_cast<double>(distance));
        identical += distance == 0;
      } else {
        // Where W and the delta cancel, an ulp of the result is far below an ulp of either, so the unit is an ulp
        // of the larger of |W| and the result.
        const float scale = std::max({std::fabs(was[i]), std::fabs(theirs[i]), 1e-30f});
        const double unit = std::ldexp(1.0, std::ilogb(scale) - 23);
        worst_ulps = std::max(worst_ulps, std::fabs(static_cast<double>(mine[i]) - theirs[i]) / unit);
        identical += mine[i] == theirs[i];
      }
    }
    total += static_cast<int64_t>(mine.size());
  }
  std::printf("    %-16s %lld of %lld merged weights bit-identical, worst %.2f ulp\n",
              entry["name"].get<std::string>().c_str(), static_cast<long long>(identical),
              static_cast<long long>(total), worst_ulps);
  EXPECT_LE(worst_ulps, 1.0);
  if (dtype == DType::BF16) {
    EXPECT_GE(identical, total * 999 / 1000);
  }
  EXPECT_GT(total, 0);

  if (dtype == DType::F32) {
    const std::vector<int32_t> ids = entry["cases"][0]["input_ids"].get<std::vector<int32_t>>();
    const float diff = testing::max_abs_diff(prefill_logits(out, ids), testing::read_f32(
        testing::fixtures_dir() + "/" + merge["text_logits"]["file"].get<std::string>()));
    std::printf("    %-16s merged logits max |diff| vs PEFT's merged model %.3g\n",
                entry["name"].get<std::string>().c_str(), diff);
    EXPECT_LE(diff, 2e-5f);
  }
}

TEST(MergeLoraCli, EqualsPeftMergeAndUnload) {
  int checked = 0;
  for (const json& entry : lora_index()["adapters"]) {
    if (!entry.contains("merge") || entry["merge"].is_null()) continue;
    check_merge(entry);
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

TEST(MergeLoraCli, DoraAfterAnotherAdapterEqualsTheUnmergedRun) {
  // DoRA's norm is taken on the weight before any adapter, also when another adapter was merged into it first;
  // then f * (W + d1 + d2) is what the forward computes with both adapters active.
  TempDir dir;
  const std::string out = dir.file("merged");
  const std::string lora = testing::fixtures_dir() + "/lora/";
  const std::string base = testing::model_fixture("tiny-fp32-tied");
  const auto result = run_cli("merge-lora -m " + base + " --lora " + lora + "lm-qkvo-mlp --lora " + lora + "dora -o " + out);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  LoadOptions options;
  options.require_tokenizer = false;
  const auto model = load_model(base, options);
  const auto adapters = bind_adapters(*model, {{load_adapter(*model, lora + "lm-qkvo-mlp"), 1.0},
                                               {load_adapter(*model, lora + "dora"), 1.0}});
  const std::vector<int32_t> ids = {1461, 1742, 1502, 810, 1023, 509, 1850, 283};
  const int64_t n = static_cast<int64_t>(ids.size());
  const TextDecoder decoder(model->config, adapters->text(), model->decoder->context());
  std::vector<float> embeds(ids.size() * 64), unmerged;
  decoder.embed(ids.data(), n, embeds.data());
  KVCache cache = decoder.make_cache(n);
  DecoderWorkspace work;
  decoder.forward(embeds.data(), n, text_positions(0, n), cache, work, LogitsRows::All, unmerged);
  const float diff = testing::max_abs_diff(prefill_logits(out, ids), unmerged);
  std::printf("    merged vs unmerged, two adapters with DoRA: max |diff| %.3g\n", diff);
  EXPECT_LE(diff, 2e-5f);
}

TEST(MergeLoraCli, TiedHeadStaysTiedAndToF32Converts) {
  TempDir dir;
  const std::string out = dir.file("merged");
  const auto result = run_cli("merge-lora -m " + testing::model_fixture("tiny-fp32-tied") + " --lora " +
                              testing::fixtures_dir() + "/lora/lm-qkvo-mlp:0.5 -o " + out);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_FALSE(TensorStore::open_dir(out).contains("lm_head.weight"));
  EXPECT_TRUE(json::parse(testing::read_file(out + "/config.json"))["tie_word_embeddings"].get<bool>());

  const std::string f32 = dir.file("f32");
  ASSERT_EQ(run_cli("merge-lora -m " + testing::model_fixture("tiny-bf16-untied") + " --lora " +
                    testing::fixtures_dir() + "/lora/two-ranks -o " + f32 + " --dtype f32").exit_code, 0);
  const TensorStore store = TensorStore::open_dir(f32);
  for (const std::string& name : store.names()) EXPECT_EQ(store.get(name).dtype, DType::F32) << name;
  EXPECT_EQ(json::parse(testing::read_file(f32 + "/config.json"))["dtype"], "float32");
}

TEST(MergeLoraCli, FailuresLeaveNoOutput) {
  TempDir dir;
  const std::string out = dir.file("merged");
  const auto missing = run_cli("merge-lora -m " + testing::model_fixture("tiny-fp32-tied") + " --lora " +
                               dir.file("nowhere") + " -o " + out);
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("nowhere/adapter_config.json"), std::string::npos) << missing.output;
  EXPECT_FALSE(std::filesystem::exists(out));
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    ADD_FAILURE() << "left behind: " << entry.path();
  // An adapter made for another checkpoint (tiny-realtok-bf16 has hidden size 32, the adapter 64).
  const auto other = run_cli("merge-lora -m " + testing::model_fixture("tiny-realtok-bf16") + " --lora " +
                             testing::fixtures_dir() + "/lora/lm-qkvo-mlp -o " + out);
  EXPECT_EQ(other.exit_code, 1) << other.output;
  EXPECT_NE(other.output.find("lm-qkvo-mlp/adapter_model.safetensors"), std::string::npos) << other.output;
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace qwen3vl
