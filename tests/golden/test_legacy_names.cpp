// Checkpoints written with the Qwen2/2.5-VL module tree (language model at model.*, vision at visual.*) load
// and compute exactly what the Qwen3-VL layout (model.language_model.*) computes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/text_decoder.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

// Rewrites a safetensors file with every tensor name passed through `rename`; the data bytes are unchanged.
void write_renamed(const std::string& from, const std::string& to, std::string (*rename)(const std::string&)) {
  const std::string bytes = testing::read_file(from);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<uint8_t>(bytes[i]);
  const auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  nlohmann::json renamed = nlohmann::json::object();
  for (const auto& [name, entry] : header.items()) renamed[name == "__metadata__" ? name : rename(name)] = entry;
  testing::write_file(to, testing::safetensors_bytes(renamed.dump(), bytes.substr(8 + header_size)));
}

std::string to_qwen25_names(const std::string& name) {
  const std::string language = "model.language_model.", vision = "model.visual.";
  if (name.rfind(language, 0) == 0) return "model." + name.substr(language.size());
  if (name.rfind(vision, 0) == 0) return "visual." + name.substr(vision.size());
  return name;
}

std::vector<float> last_logits(const std::string& dir) {
  const ModelConfig config = load_model_config(dir + "/config.json");
  const TensorStore store = TensorStore::open_dir(dir);
  const TextWeights weights = bind_text_weights(store, config);
  const TextDecoder decoder(config, weights);
  const std::vector<int32_t> ids = {5, 17, 300, 42, 7};
  KVCache cache = decoder.make_cache(5);
  DecoderWorkspace work;
  std::vector<float> embeds(5 * config.text_config.hidden_size), logits;
  decoder.embed(ids.data(), 5, embeds.data());
  decoder.forward(embeds.data(), 5, text_positions(0, 5), cache, work, LogitsRows::Last, logits);
  return logits;
}

TEST(LegacyNames, Qwen25VLPrefixesGiveIdenticalLogits) {
  const std::string original = testing::model_fixture("tiny-fp32-tied");
  testing::TempDir dir;
  testing::write_file(dir.file("config.json"), testing::read_file(original + "/config.json"));
  write_renamed(original + "/model.safetensors", dir.file("model.safetensors"), to_qwen25_names);
  const TensorStore renamed = TensorStore::open_dir(dir.path());
  ASSERT_TRUE(renamed.contains("model.embed_tokens.weight"));
  ASSERT_FALSE(renamed.contains("model.language_model.embed_tokens.weight"));
  EXPECT_EQ(last_logits(dir.path()), last_logits(original));
}

}  // namespace
}  // namespace qwen3vl
