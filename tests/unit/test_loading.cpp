// safetensors and config.json parsing: good files load, every kind of bad file is an Error naming the culprit.
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "io/model_config.h"
#include "core/quant_layout.h"
#include "io/safetensors.h"
#include "model/weight_convert.h"
#include "ops/ops.h"
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

// Expects opening a directory whose model.safetensors holds `header_json` and `data` to fail with every needle.
void expect_open_error(const std::string& header_json, const std::string& data,
                       std::initializer_list<std::string> needles) {
  TempDir dir;
  write_file(dir.file("model.safetensors"), testing::safetensors_bytes(header_json, data));
  expect_error([&] { TensorStore::open_dir(dir.path()); }, needles);
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
  expect_open_error("{not json", "", {"model.safetensors", "corrupt safetensors header"});
}

TEST(Safetensors, UnknownDtypeNamesTheTensor) {
  expect_open_error(R"({"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", "abcd",
                    {"model.safetensors", "tensor w", "F8_E4M3"});
}

TEST(Safetensors, TruncatedDataIsAnError) {
  expect_open_error(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "12345678",
                    {"tensor w", "truncated"});
}

TEST(Safetensors, ByteCountMustMatchShape) {
  expect_open_error(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "12345678", {"tensor w", "[3]"});
}

// Review M2: sizes from the header are checked with arithmetic that cannot wrap.
TEST(Safetensors, ByteCountThatWrapsIsAnError) {
  // 2^31 x 2^31 F32 elements are 2^64 bytes, which wrapped to the 0 stored.
  expect_open_error(R"({"w":{"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,0]}})", "",
                    {"tensor w", "more than 2^64 bytes"});
}

TEST(Safetensors, DimensionAboveInt64MaxIsAnError) {
  expect_open_error(R"({"w":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0]}})", "",
                    {"tensor w", "dimension 9223372036854775808"});
  // The product of dims each below 2^63 may not pass 2^63 either (numel is int64_t).
  expect_open_error(R"({"w":{"dtype":"F16","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", "",
                    {"tensor w", "more than 2^63 - 1 elements"});
}

TEST(Safetensors, PlainU8TensorIsRefused) {
  expect_open_error(R"({"norm":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", "12345678",
                    {"tensor norm", "U8 without a quantized layout"});
}

// A quantized tensor's metadata: [rows, cols] or [experts, rows, cols], and exactly the layout's bytes.
TEST(Safetensors, QuantizedShapeAndBytesAreCheckedAtParse) {
  TempDir dir;
  const uint64_t blob = quant_matrix_bytes(DType::Q8, 16, 64);  // one unit
  auto file = [&](const std::string& shape, uint64_t bytes) {
    const std::string meta = R"(,"__metadata__":{"w":"{\"format\": \"q8\", \"block\": 32, \"layout\": \")" +
                             std::string(kQuantLayoutName) + R"(\", \"shape\": )" + shape + R"(}"}})";
    write_file(dir.file("model.safetensors"),
               testing::safetensors_bytes(R"({"w":{"dtype":"U8","shape":[)" + std::to_string(bytes) +
                                              R"(],"data_offsets":[0,)" + std::to_string(bytes) + "]}" + meta,
                                          std::string(bytes, '\0')));
  };
  file("[16, 64]", blob);
  const TensorStore store = TensorStore::open_dir(dir.path());
  EXPECT_EQ(store.get("w").dtype, DType::Q8);
  EXPECT_EQ(store.get("w").shape, (std::vector<int64_t>{16, 64}));
  file("[2, 16, 64]", 2 * blob);
  EXPECT_EQ(TensorStore::open_dir(dir.path()).get("w").shape, (std::vector<int64_t>{2, 16, 64}));
  file("[32, 64]", blob);  // two tiles need twice the bytes
  expect_error([&] { TensorStore::open_dir(dir.path()); }, {"tensor w", "holds 1088 bytes", "needs 2176"});
  file("[1024]", blob);  // a norm weight cannot be quantized
  expect_error([&] { TensorStore::open_dir(dir.path()); }, {"tensor w", "must be [rows, cols]"});
  file("[9223372036854775807, 9223372036854775807]", blob);
  expect_error([&] { TensorStore::open_dir(dir.path()); }, {"tensor w", "more than 2^64"});
  file("[-16, 64]", blob);
  expect_error([&] { TensorStore::open_dir(dir.path()); }, {"tensor w", "bad quantized shape"});
}

// Review m3: elements are read through typed pointers, so a tensor whose data is not aligned to its element size
// (a header length that is not a multiple of 8, unpadded) is refused rather than read misaligned.
TEST(Safetensors, MisalignedDataIsRefused) {
  TempDir dir;
  const std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";  // 55 bytes
  ASSERT_NE(header.size() % 4, 0u);
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(header.size());
  write_file(dir.file("model.safetensors"), bytes + header + floats({1}));
  expect_error([&] { TensorStore::open_dir(dir.path()); }, {"tensor w", "not aligned to its 4-byte elements"});
}

// Review M2: what the binders accept, whatever a file claims: vectors (norms, biases) and embedding tables only
// F32 / F16 / BF16, matrices also q8 / q4 of exactly the layout's bytes. And the kernels' dispatcher refuses any
// other dtype, so a kernel's fallback load (F16 for anything unknown) can never run on a U8 buffer.
TEST(WeightBinding, OnlyTheDtypesTheKernelsReadAreBound) {
  const std::vector<uint8_t> bytes(4096);
  TensorView view;
  view.name = "w";
  view.file = "model.safetensors";
  view.data = bytes.data();
  view.dtype = DType::U8;
  view.bytes = 64;
  expect_error([&] { bind_weight_vector(view, 64); }, {"model.safetensors", "tensor w", "U8"});
  expect_error([&] { bind_weight_matrix(view, 8, 8); }, {"tensor w", "U8"});
  view.dtype = DType::Q8;
  view.bytes = quant_matrix_bytes(DType::Q8, 16, 64);
  expect_error([&] { bind_weight_vector(view, 16); }, {"tensor w", "Q8"});
  expect_error([&] { bind_embedding_table(view, 16, 64); }, {"tensor w", "Q8"});
  EXPECT_EQ(bind_weight_matrix(view, 16, 64).dtype, DType::Q8);
  expect_error([&] { bind_weight_matrix(view, 32, 64); }, {"tensor w", "needs 2176"});
  view.dtype = DType::BF16;
  view.bytes = 64;
  EXPECT_EQ(bind_weight_vector(view, 32).size, 32);
  expect_error([&] { bind_weight_vector(view, 64); }, {"tensor w", "holds 64 bytes"});
}

TEST(WeightBinding, KernelDispatcherRefusesOtherDtypes) {
  const std::vector<uint8_t> bytes(4096);
  std::vector<float> x(64, 1.0f), y(64);
  const WeightVector u8_vector{DType::U8, bytes.data(), 64};
  EXPECT_THROW(ops::rms_norm(x.data(), 1, 64, u8_vector, 1e-6f, y.data(), Precision::F32), Error);
  const WeightVector f32_vector{DType::F32, bytes.data(), 64};
  EXPECT_THROW(ops::layer_norm(x.data(), 1, 64, f32_vector, u8_vector, 1e-6f, y.data(), Precision::F32), Error);
  const WeightMatrix u8_matrix{DType::U8, bytes.data(), 8, 64};
  EXPECT_THROW(ops::linear(x.data(), 1, u8_matrix, y.data(), Precision::F32), Error);
  const int32_t ids[1] = {0};
  EXPECT_THROW(ops::embedding(u8_matrix, ids, 1, y.data()), Error);
  // The same calls with a dtype the kernels read run.
  ops::rms_norm(x.data(), 1, 64, f32_vector, 1e-6f, y.data(), Precision::F32);
  EXPECT_EQ(y[0], 0.0f);  // zero weights
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

// Review m2: checkpoints this engine cannot run are refused by the field that says so.
TEST(Config, UnsupportedCheckpointsAreRefusedByTheirField) {
  TempDir dir;
  auto expect_refused = [&](const std::string& from, const std::string& to,
                            std::initializer_list<std::string> needles) {
    std::string text = kConfig;
    ASSERT_NE(text.find(from), std::string::npos) << from;
    text.replace(text.find(from), from.size(), to);
    write_file(dir.file("config.json"), text);
    expect_error([&] { load_model_config(dir.file("config.json")); }, needles);
  };
  expect_refused(R"("image_token_id": 7,)",
                 R"("image_token_id": 7, "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]},)",
                 {"config.json", "quantization_config", "fp8"});
  expect_refused(R"("image_token_id": 7,)",
                 R"("image_token_id": 7, "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": true},)",
                 {"quantization_config", "bitsandbytes"});
  expect_refused(R"("vocab_size": 100,)", R"("vocab_size": 100, "quantization_config": {"quant_method": "awq"},)",
                 {"text_config.quantization_config", "awq"});
  expect_refused(R"("vocab_size": 100,)", R"("vocab_size": 100, "hidden_act": "gelu",)",
                 {"config.json", "text_config.hidden_act", "gelu"});
  expect_refused(R"("vocab_size": 100,)", R"("vocab_size": 100, "attention_bias": true,)",
                 {"config.json", "text_config.attention_bias"});
  expect_refused(R"("out_hidden_size": 16)", R"("out_hidden_size": 24)",
                 {"config.json", "vision_config.out_hidden_size 24", "text_config.hidden_size 16"});
  // The released values load.
  std::string text = kConfig;
  text.replace(text.find(R"("vocab_size": 100,)"), 18, R"("vocab_size": 100, "hidden_act": "silu", "attention_bias": false,)");
  write_file(dir.file("config.json"), text);
  EXPECT_EQ(load_model_config(dir.file("config.json")).text_config.vocab_size, 100);
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
