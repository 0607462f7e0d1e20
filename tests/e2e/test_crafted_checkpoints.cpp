// Checkpoints crafted to break the loader (security review findings M1, M2, m2, m3), made here from the committed
// tiny fixtures: the CLI must refuse each with exactly one `error: <file>: <what>` line and exit code 1, never crash
// or read out of bounds.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace qwen3vl {
namespace {

using nlohmann::json;
using testing::run_cli;
using testing::TempDir;

// A copy of fixture `name` in `dir`, ready to be edited.
std::string copy_fixture(const TempDir& dir, const std::string& name) {
  const std::string out = dir.file(name);
  testing::copy_dir(testing::model_fixture(name), out);
  return out;
}

// Replaces `path` (never writing through a symlink into the fixture) with `bytes`.
void replace_file(const std::string& path, const std::string& bytes) {
  std::filesystem::remove(path);
  testing::write_file(path, bytes);
}

// Rewrites a JSON file of the copy through `edit`.
void edit_json(const std::string& path, const std::function<void(json&)>& edit) {
  json value = json::parse(testing::read_file(path));
  edit(value);
  replace_file(path, value.dump(2));
}

// Rewrites the header of DIR/model.safetensors through `edit`; the data stays as it is (the header is padded to a
// multiple of 8 again, so the offsets and alignment still hold).
void edit_safetensors_header(const std::string& dir, const std::function<void(json&)>& edit) {
  const std::string path = dir + "/model.safetensors";
  const std::string bytes = testing::read_file(path);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<uint8_t>(bytes[i]);
  json header = json::parse(bytes.substr(8, header_size));
  edit(header);
  replace_file(path, testing::safetensors_bytes(header.dump(), bytes.substr(8 + header_size)));
}

// Exit code 1, and the output is exactly one line: "error: " followed by text holding every needle.
void expect_one_error_line(const testing::CommandResult& result, std::initializer_list<std::string> needles) {
  EXPECT_EQ(result.exit_code, 1) << result.output;
  std::istringstream lines(result.output);
  std::vector<std::string> all;
  for (std::string line; std::getline(lines, line);) all.push_back(line);
  ASSERT_EQ(all.size(), 1u) << result.output;
  EXPECT_EQ(all[0].rfind("error: ", 0), 0u) << all[0];
  EXPECT_EQ(all[0].find("internal"), std::string::npos) << all[0];
  for (const std::string& needle : needles) EXPECT_NE(all[0].find(needle), std::string::npos) << needle << "\n" << all[0];
}

testing::CommandResult run_model(const std::string& dir) { return run_cli("run -m " + dir + " -p hi -n 1"); }
testing::CommandResult info_model(const std::string& dir) { return run_cli("info -m " + dir); }

// M1: a Qwen2-VL preprocessor config (patch_size 14) would make 1176-float rows for a tower that reads 1536.
TEST(CraftedCheckpoints, PreprocessorPatchSizeThatDisagreesWithTheTowerIsRefused) {
  TempDir tmp;
  const std::string dir = copy_fixture(tmp, "tiny-realtok-bf16");
  edit_json(dir + "/preprocessor_config.json", [](json& j) { j["patch_size"] = 14; });
  expect_one_error_line(run_model(dir), {dir + "/preprocessor_config.json: patch_size 14", "vision_config.patch_size 16"});
}

TEST(CraftedCheckpoints, VideoPreprocessorThatDisagreesWithTheTowerIsRefused) {
  TempDir tmp;
  const std::string dir = copy_fixture(tmp, "tiny-realtok-bf16");
  replace_file(dir + "/video_preprocessor_config.json", R"({"temporal_patch_size": 1, "merge_size": 2})");
  expect_one_error_line(run_model(dir), {dir + "/video_preprocessor_config.json: temporal_patch_size 1",
                                         "vision_config.temporal_patch_size 2"});
  replace_file(dir + "/video_preprocessor_config.json", R"({"merge_size": 4})");
  expect_one_error_line(run_model(dir), {"merge_size 4", "vision_config.spatial_merge_size 2"});
}

// M2: [2^31, 2^31] F32 is 2^64 bytes, which wrapped to the 0 stored.
TEST(CraftedCheckpoints, ShapeWhoseByteCountOverflowsIsRefused) {
  TempDir tmp;
  const std::string dir = copy_fixture(tmp, "tiny-bf16-untied");
  edit_safetensors_header(dir, [](json& h) {
    h["huge"] = {{"dtype", "F32"}, {"shape", {uint64_t{1} << 31, uint64_t{1} << 31}}, {"data_offsets", {0, 0}}};
  });
  expect_one_error_line(info_model(dir), {dir + "/model.safetensors: tensor huge", "more than 2^64 bytes"});
}

TEST(CraftedCheckpoints, DimensionAboveInt64MaxIsRefused) {
  TempDir tmp;
  const std::string dir = copy_fixture(tmp, "tiny-bf16-untied");
  edit_safetensors_header(dir, [](json& h) {
    h["huge"] = {{"dtype", "BF16"}, {"shape", {uint64_t{1} << 63, 0}}, {"data_offsets", {0, 0}}};
  });
  expect_one_error_line(info_model(dir), {dir + "/model.safetensors: tensor huge", "dimension 9223372036854775808"});
}

// M2: a U8 norm weight was read as F16 (twice its bytes) by the kernels.
TEST(CraftedCheckpoints, U8NormWeightIsRefused) {
  TempDir tmp;
  const std::string dir = copy_fixture(tmp, "tiny-realtok-bf16");
  const std::string norm = "model.language_model.norm.weight";
  edit_safetensors_header(dir, [&](json& h) {
    ASSERT_EQ(h[norm]["dtype"], "BF16");
    h[norm]["dtype"] = "U8";
    h[norm]["shape"] = {2 * h[norm]["shape"][0].get<int64_t>()};  // same bytes
  });
  expect_one_error_line(run_model(dir), {dir + "/model.safetensors: tensor " + norm, "U8"});
}

// M2: quantization metadata on a norm weight (a 1-D tensor cannot be a quantized matrix).
TEST(CraftedCheckpoints, QuantizedNormWeightIsRefused) {
  TempDir tmp;
  const std::string dir = copy_fixture(tmp, "tiny-realtok-bf16");
  const std::string norm = "model.language_model.norm.weight";
  edit_safetensors_header(dir, [&](json& h) {
    h[norm]["dtype"] = "U8";
    h[norm]["shape"] = {2 * h[norm]["shape"][0].get<int64_t>()};
    h["__metadata__"][norm] = R"({"format": "q8", "block": 32, "layout": "tiles16x64", "shape": [64]})";
  });
  expect_one_error_line(run_model(dir), {dir + "/model.safetensors: tensor " + norm, "must be [rows, cols]"});
}

// m2: an FP8 (or bitsandbytes, AWQ, GPTQ) checkpoint is refused by its quantization_config, not by a dtype later.
TEST(CraftedCheckpoints, QuantizationConfigIsRefused) {
  TempDir tmp;
  const std::string dir = copy_fixture(tmp, "tiny-bf16-untied");
  edit_json(dir + "/config.json", [](json& j) {
    j["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"weight_block_size", {128, 128}}};
  });
  expect_one_error_line(info_model(dir), {dir + "/config.json: quantization_config", "fp8"});
  edit_json(dir + "/config.json", [](json& j) { j["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}}; });
  expect_one_error_line(info_model(dir), {dir + "/config.json: quantization_config", "gptq"});
}

// m3: a header whose length leaves the data misaligned is refused, not read through misaligned pointers.
TEST(CraftedCheckpoints, MisalignedTensorDataIsRefused) {
  TempDir tmp;
  const std::string dir = copy_fixture(tmp, "tiny-bf16-untied");
  const std::string path = dir + "/model.safetensors";
  const std::string bytes = testing::read_file(path);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<uint8_t>(bytes[i]);
  std::string header = json::parse(bytes.substr(8, header_size)).dump();
  if (header.size() % 2 == 0) header += ' ';  // odd: every BF16 tensor starts at an odd address
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  replace_file(path, out + header + bytes.substr(8 + header_size));
  expect_one_error_line(info_model(dir), {path + ": tensor ", "not aligned to its 2-byte elements"});
}

}  // namespace
}  // namespace qwen3vl
