// safetensors and config.json parsing: good files load, every kind of bad file is an Error naming the culprit.
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using testing::TempDir;
using testing::write_file;

std::string floats(std::initializer_list<float> values) {
  std::string out(values.size() * 4, '\0');
  size_t i = 0;
  for (float v : values) std::memcpy(&out[4 * i++], &v, 4);
  return out;
}

// Expects `body` to throw qwen3vl::Error whose message contains every needle.
template <typename Body>
void expect_error(Body body, std::initializer_list<std::string> needles) {
  try {
    body();
    FAIL() << "no error thrown";
  } catch (const Error& error) {
    for (const std::string& needle : needles) EXPECT_NE(std::string(error.what()).find(needle), std::string::npos)
        << "message: " << error.what() << "\nmissing: " << needle;
  }
}

TEST(Safetensors, ParsesTensorsOfEachDtype) {
  TempDir dir;
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"BF16","shape":[1,1],"data_offsets":[8,10]},"c":{"dtype":"F16","shape":[1],"data_offsets":[10,12]}})";
  std::string data = floats({1.5f, -2.0f});
  data += std::string("\x80\x3f", 2);  // bf16 1.0
  data += std::string("\x00\x3c", 2);  // f16 1.0
  write_file(dir.file("model.safetensors"), testing::safetensors_bytes(header, data));
  const TensorStore store = TensorStore::open_dir(dir.path());
  const TensorView& a = store.get("a");
  EXPECT_EQ(a.dtype, DType::F32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2}));
  float values[2];
  convert_to_f32(a.dtype, a.data, values, 2);
  EXPECT_EQ(values[1], -2.0f);
  float one;
  convert_to_f32(store.get("b").dtype, store.get("b").data, &one, 1);
  EXPECT_EQ(one, 1.0f);
  convert_to_f32(store.get("c").dtype, store.get("c").data, &one, 1);
  EXPECT_EQ(one, 1.0f);
  EXPECT_EQ(store.names().size(), 3u);
}

TEST(Safetensors, TruncatedFileIsAnError) {
  TempDir dir;
  write_file(dir.file("model.safetensors"), "\x10\x00\x00");
  expect_error([&] { TensorStore::open_dir(dir.path()); }, {"model.safetensors", "truncated"});
}

TEST(Safetensors, HeaderLongerThanFileIsAnError) {
  TempDir dir;
  std::string bytes = testing::safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "");
  bytes[0] = static_cast<char>(0xff);
  write_file(dir.file("model.safetensors"), bytes);
  expect_error([&] { TensorStore::open_dir(dir.path()); }, {"model.safetensors", "header"});
}

TEST(Safetensors, CorruptHeaderIsAnError) {
  TempDir dir;
  write_file(dir.file("model.safetensors"), testing::safetensors_bytes("{not json", ""));
  expect_error([&] { TensorStore::open_dir(dir.path()); }, {"model.safetensors", "corrupt safetensors header"});
}

TEST(Safetensors, UnknownDtypeNamesTheTensor) {
  TempDir dir;
  write_file(dir.file("model.safetensors"),
             testing::safetensors_bytes(R"({"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", "abcd"));
  expect_error([&] { TensorStore::open_dir(dir.path()); }, {"model.safetensors", "tensor w", "F8_E4M3"});
}

TEST(Safetensors, TruncatedDataIsAnError) {
  TempDir dir;
  write_file(dir.file("model.safetensors"),
             testing::safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "12345678"));
  expect_error([&] { TensorStore::open_dir(dir.path()); }, {"tensor w", "truncated"});
}

TEST(Safetensors, ByteCountMustMatchShape) {
  TempDir dir;
  write_file(dir.file("model.safetensors"),
             testing::safetensors_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "12345678"));
  expect_error([&] { TensorStore::open_dir(dir.path()); }, {"tensor w", "[3]"});
}

TEST(Safetensors, MissingTensorNamesItAndTheFile) {
  TempDir dir;
  write_file(dir.file("model.safetensors"),
             testing::safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", floats({1})));
  const TensorStore store = TensorStore::open_dir(dir.path());
  expect_error([&] { store.get("lm_head.weight"); }, {"model.safetensors", "missing tensor lm_head.weight"});
}

TEST(Safetensors, ShardedIndexResolvesEveryTensor) {
  TempDir dir;
  write_file(dir.file("a.safetensors"),
             testing::safetensors_bytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", floats({3})));
  write_file(dir.file("b.safetensors"),
             testing::safetensors_bytes(R"({"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", floats({4})));
  write_file(dir.file("model.safetensors.index.json"),
             R"({"metadata":{},"weight_map":{"x":"a.safetensors","y":"b.safetensors"}})");
  const TensorStore store = TensorStore::open_dir(dir.path());
  float y;
  convert_to_f32(DType::F32, store.get("y").data, &y, 1);
  EXPECT_EQ(y, 4.0f);
  EXPECT_EQ(store.get("x").file, dir.file("a.safetensors"));
}

TEST(Safetensors, IndexPointingAtMissingShardIsAnError) {
  TempDir dir;
  write_file(dir.file("model.safetensors.index.json"), R"({"weight_map":{"x":"gone.safetensors"}})");
  expect_error([&] { TensorStore::open_dir(dir.path()); }, {"gone.safetensors", "cannot open"});
}

TEST(Safetensors, EmptyDirectoryIsAnError) {
  TempDir dir;
  expect_error([&] { TensorStore::open_dir(dir.path()); }, {"no model.safetensors"});
}

const char* kConfig = R"({
  "model_type": "qwen3_vl", "tie_word_embeddings": true, "image_token_id": 7,
  "text_config": {"vocab_size": 100, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                  "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "rms_norm_eps": 1e-6,
                  "rope_theta": 5000000, "eos_token_id": 3,
                  "rope_scaling": {"rope_type": "default", "mrope_section": [2, 1, 1], "mrope_interleaved": true}},
  "vision_config": {"depth": 1, "hidden_size": 8, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16,
                    "num_position_embeddings": 16, "deepstack_visual_indexes": [0]}
})";

TEST(Config, ReadsTheQwen3VLFields) {
  TempDir dir;
  write_file(dir.file("config.json"), kConfig);
  const ModelConfig config = load_model_config(dir.file("config.json"));
  EXPECT_EQ(config.text_config.head_dim, 8);
  EXPECT_EQ(config.text_config.mrope_section, (std::vector<int64_t>{2, 1, 1}));
  EXPECT_EQ(config.text_config.rope_theta, 5000000.0);
  EXPECT_TRUE(config.tie_word_embeddings);
  EXPECT_EQ(config.image_token_id, 7);
  EXPECT_EQ(config.eos_token_id, (std::vector<int64_t>{3}));
  EXPECT_EQ(config.vision_config.deepstack_visual_indexes, (std::vector<int64_t>{0}));
  EXPECT_EQ(config.vision_config.rope_theta, 10000.0);  // no rope_parameters: the value 4.57 hard-coded
}

TEST(Config, ReadsTransformers5RopeParameters) {
  TempDir dir;
  std::string text = kConfig;
  const std::string old_rope = R"("rope_theta": 5000000, "eos_token_id": 3,
                  "rope_scaling": {"rope_type": "default",)";
  text.replace(text.find(old_rope), old_rope.size(),
               R"("eos_token_id": 3, "rope_parameters": {"rope_type": "default", "rope_theta": 1000.0,)");
  write_file(dir.file("config.json"), text);
  const ModelConfig config = load_model_config(dir.file("config.json"));
  EXPECT_EQ(config.text_config.rope_theta, 1000.0);
  EXPECT_EQ(config.text_config.mrope_section, (std::vector<int64_t>{2, 1, 1}));
}

TEST(Config, ReadsTheVisionRotaryBase) {
  TempDir dir;
  std::string text = kConfig;
  const std::string vision = R"("num_position_embeddings": 16,)";
  text.replace(text.find(vision), vision.size(),
               vision + R"( "rope_parameters": {"rope_theta": 20000.0, "rope_type": "axial"},)");
  write_file(dir.file("config.json"), text);
  EXPECT_EQ(load_model_config(dir.file("config.json")).vision_config.rope_theta, 20000.0);
}

TEST(Config, UnknownModelTypeIsAnError) {
  TempDir dir;
  std::string text = kConfig;
  text.replace(text.find("qwen3_vl"), 8, "llama");
  write_file(dir.file("config.json"), text);
  expect_error([&] { load_model_config(dir.file("config.json")); }, {"config.json", "model_type", "llama"});
}

TEST(Config, MissingAndMistypedFieldsAreNamed) {
  TempDir dir;
  std::string text = kConfig;
  text.replace(text.find("\"hidden_size\": 16"), 17, "\"hidden_size\": \"16\"");
  write_file(dir.file("config.json"), text);
  expect_error([&] { load_model_config(dir.file("config.json")); }, {"config.json", "text_config.hidden_size"});
  text = kConfig;
  text.replace(text.find("\"num_hidden_layers\": 2,"), 23, "");
  write_file(dir.file("config.json"), text);
  expect_error([&] { load_model_config(dir.file("config.json")); },
               {"text_config.num_hidden_layers", "missing"});
}

TEST(Config, MropeSectionMustCoverHalfTheHeadDim) {
  TempDir dir;
  std::string text = kConfig;
  text.replace(text.find("[2, 1, 1]"), 9, "[2, 2, 2]");
  write_file(dir.file("config.json"), text);
  expect_error([&] { load_model_config(dir.file("config.json")); }, {"mrope_section"});
}

TEST(Config, GenerationConfigDefaultsAndValues) {
  TempDir dir;
  EXPECT_FALSE(load_generation_config(dir.file("generation_config.json")).do_sample);
  write_file(dir.file("generation_config.json"),
             R"({"eos_token_id": [5, 6], "do_sample": true, "temperature": 0.7, "top_k": 20, "top_p": 0.8})");
  const GenerationConfig config = load_generation_config(dir.file("generation_config.json"));
  EXPECT_EQ(config.eos_token_id, (std::vector<int64_t>{5, 6}));
  EXPECT_TRUE(config.do_sample);
  EXPECT_EQ(config.top_k, 20);
  EXPECT_DOUBLE_EQ(config.top_p, 0.8);
}

}  // namespace
}  // namespace qwen3vl
