// Binding the vision tower by HF name: both checkpoint layouts (model.visual.* and the Qwen2/2.5-VL visual.*),
// errors that name the file and tensor or config field, and grids the encoder refuses.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/vision_encoder.h"
#include "model/vision_weights.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using nlohmann::json;

// Copies a checkpoint with its safetensors tensor names passed through `rename` and its config.json edited.
void copy_checkpoint(const std::string& from, const testing::TempDir& to, std::string (*rename)(const std::string&),
                     const std::function<void(json&)>& edit_config = nullptr) {
  json config = json::parse(testing::read_file(from + "/config.json"));
  if (edit_config) edit_config(config);
  testing::write_file(to.file("config.json"), config.dump(2));
  const std::string bytes = testing::read_file(from + "/model.safetensors");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<uint8_t>(bytes[i]);
  const json header = json::parse(bytes.substr(8, header_size));
  json renamed = json::object();
  for (const auto& [name, entry] : header.items()) renamed[name == "__metadata__" ? name : rename(name)] = entry;
  testing::write_file(to.file("model.safetensors"),
                      testing::safetensors_bytes(renamed.dump(), bytes.substr(8 + header_size)));
}

std::string same_name(const std::string& name) { return name; }
std::string qwen25_vision_names(const std::string& name) {
  const std::string vision = "model.visual.";
  return name.rfind(vision, 0) == 0 ? "visual." + name.substr(vision.size()) : name;
}
std::string drop_deepstack_1(const std::string& name) {
  return name.find("deepstack_merger_list.1.linear_fc2.bias") != std::string::npos ? "unused." + name : name;
}

std::string bind_error(const std::string& dir) {
  try {
    const ModelConfig config = load_model_config(dir + "/config.json");
    const TensorStore store = TensorStore::open_dir(dir);
    bind_vision_weights(store, config);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(VisionWeights, BindsEveryTensorWithItsShape) {
  const std::string dir = testing::model_fixture("tiny-vision-hd24-fp32");
  const ModelConfig config = load_model_config(dir + "/config.json");
  const TensorStore store = TensorStore::open_dir(dir);
  const VisionWeights w = bind_vision_weights(store, config);
  EXPECT_EQ(w.prefix, "model.visual.");
  EXPECT_EQ(w.dtype, DType::F32);
  EXPECT_EQ(w.patch_embed.weight.rows, 48);
  EXPECT_EQ(w.patch_embed.weight.cols, 3 * 2 * 16 * 16);
  EXPECT_EQ(w.pos_embed.rows, 36);
  ASSERT_EQ(w.blocks.size(), 3u);
  EXPECT_EQ(w.blocks[2].qkv.weight.rows, 144);
  EXPECT_EQ(w.blocks[2].linear_fc1.weight.rows, 96);
  EXPECT_FALSE(w.merger.use_postshuffle_norm);
  EXPECT_EQ(w.merger.norm.weight.size, 48);  // before the shuffle: over D
  ASSERT_EQ(w.deepstack_merger_list.size(), 2u);
  EXPECT_TRUE(w.deepstack_merger_list[1].use_postshuffle_norm);
  EXPECT_EQ(w.deepstack_merger_list[1].norm.weight.size, 4 * 48);  // after the shuffle: over 4D
  EXPECT_EQ(w.deepstack_merger_list[1].linear_fc2.weight.rows, 64);
}

TEST(VisionWeights, Qwen25VisualPrefixGivesIdenticalOutput) {
  const std::string original = testing::model_fixture("tiny-fp32-tied");
  testing::TempDir dir;
  copy_checkpoint(original, dir, qwen25_vision_names);
  const auto run = [](const std::string& path, std::string* prefix) {
    const ModelConfig config = load_model_config(path + "/config.json");
    const TensorStore store = TensorStore::open_dir(path);
    const VisionWeights weights = bind_vision_weights(store, config);
    *prefix = weights.prefix;
    const VisionEncoder encoder(config, weights);
    std::vector<float> pixels(16 * encoder.patch_dim());
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<float>((i * 37) % 101) / 50.f - 1.f;
    return encoder.forward(pixels.data(), {GridTHW{1, 4, 4}});
  };
  std::string prefix_renamed, prefix_original;
  const VisionOutput renamed = run(dir.path(), &prefix_renamed);
  const VisionOutput reference = run(original, &prefix_original);
  EXPECT_EQ(prefix_renamed, "visual.");
  EXPECT_EQ(prefix_original, "model.visual.");
  EXPECT_EQ(renamed.embeds, reference.embeds);
  EXPECT_EQ(renamed.deepstack, reference.deepstack);
  EXPECT_EQ(renamed.embeds.size(), 4u * 64u);  // 4 merged tokens of out_hidden_size 64
}

TEST(VisionWeights, ShapeMismatchNamesFileAndTensor) {
  testing::TempDir dir;
  copy_checkpoint(testing::model_fixture("tiny-fp32-tied"), dir, same_name,
                  [](json& c) { c["vision_config"]["intermediate_size"] = 80; });
  const std::string message = bind_error(dir.path());
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("model.visual.blocks.0.mlp.linear_fc1.weight"), std::string::npos) << message;
  EXPECT_NE(message.find("[64, 32]"), std::string::npos) << message;
  EXPECT_NE(message.find("[80, 32]"), std::string::npos) << message;
}

TEST(VisionWeights, MissingTensorIsNamed) {
  testing::TempDir dir;
  copy_checkpoint(testing::model_fixture("tiny-vision-hd24-fp32"), dir, drop_deepstack_1);
  const std::string message = bind_error(dir.path());
  EXPECT_NE(message.find("model.visual.deepstack_merger_list.1.linear_fc2.bias"), std::string::npos) << message;

  testing::TempDir none;
  copy_checkpoint(testing::model_fixture("tiny-fp32-tied"), none,
                  [](const std::string& n) { return n.rfind("model.visual.", 0) == 0 ? "x" + n : n; });
  EXPECT_NE(bind_error(none.path()).find("missing tensor model.visual.patch_embed.proj.weight"), std::string::npos);
}

TEST(VisionWeights, UnsupportedVisionConfigNamesTheField) {
  const auto error_for = [](const std::function<void(json&)>& edit) {
    testing::TempDir dir;
    copy_checkpoint(testing::model_fixture("tiny-fp32-tied"), dir, same_name, edit);
    return bind_error(dir.path());
  };
  EXPECT_NE(error_for([](json& c) { c["vision_config"]["num_heads"] = 16; }).find("not a multiple of 4"),
            std::string::npos);  // head dim 2
  EXPECT_NE(error_for([](json& c) { c["vision_config"]["num_heads"] = 3; }).find("not a multiple of num_heads"),
            std::string::npos);
  EXPECT_NE(error_for([](json& c) { c["vision_config"]["num_position_embeddings"] = 15; }).find("not a square"),
            std::string::npos);
  EXPECT_NE(error_for([](json& c) { c["vision_config"]["deepstack_visual_indexes"] = {0, 2}; })
                .find("deepstack_visual_indexes entry 2"),
            std::string::npos);
  EXPECT_NE(error_for([](json& c) { c["vision_config"]["hidden_act"] = "relu"; }).find("hidden_act \"relu\""),
            std::string::npos);
}

TEST(VisionEncoder, RefusesGridsThatDoNotMerge) {
  const std::string dir = testing::model_fixture("tiny-fp32-tied");
  const ModelConfig config = load_model_config(dir + "/config.json");
  const TensorStore store = TensorStore::open_dir(dir);
  const VisionWeights weights = bind_vision_weights(store, config);
  const VisionEncoder encoder(config, weights);
  std::vector<float> pixels(3 * 4 * encoder.patch_dim(), 0.f);
  try {
    encoder.forward(pixels.data(), {GridTHW{1, 3, 4}});
    FAIL() << "odd grid accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("grid_thw 0 = (1, 3, 4)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(encoder.forward(pixels.data(), {GridTHW{0, 2, 2}}), Error);
  const VisionOutput empty = encoder.forward(pixels.data(), {});
  EXPECT_TRUE(empty.embeds.empty());
  ASSERT_EQ(empty.deepstack.size(), 2u);
  EXPECT_TRUE(empty.deepstack[0].empty());
}

}  // namespace
}  // namespace qwen3vl
