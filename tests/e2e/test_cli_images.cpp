// `qwen3vl run --image ...` end to end on the tiny real-tokenizer checkpoint, and every class of bad image input:
// each must end with one line naming the file and exit code 1, never a crash.
#include <gtest/gtest.h>

#include "test_util.h"

namespace qwen3vl {
namespace {

using testing::run_cli;
using testing::TempDir;

std::string model_dir() { return testing::model_fixture("tiny-realtok-bf16"); }
std::string image(const std::string& name) { return testing::fixtures_dir() + "/multimodal/images/" + name; }

void expect_image_error(const std::string& path, const std::string& extra, const std::string& needle) {
  const auto result = run_cli("run -m " + model_dir() + " --image " + path + " -p hi -n 2 " + extra);
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("error: " + path), std::string::npos) << result.output;
  EXPECT_NE(result.output.find(needle), std::string::npos) << result.output;
}

TEST(CliImages, TwoImagesPrintTheirVisualTokens) {
  const auto result = run_cli("run -m " + model_dir() + " --image " + image("shapes_150x97.png") + " --image " +
                              image("shapes_70x50.png") + " -p 'Compare them.' --temp 0 -n 4 --image-max-tokens 64");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("image 1: " + image("shapes_150x97.png") + " 150x97 -> "), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("visual tokens"), std::string::npos);
  EXPECT_NE(result.output.find("image 2: "), std::string::npos);
  EXPECT_NE(result.output.find("vision "), std::string::npos);
}

TEST(CliImages, TokenBudgetFlagsChangeTheGrid) {
  const auto small = run_cli("run -m " + model_dir() + " --image " + image("shapes_240x60.png") +
                             " -p hi --temp 0 -n 1 --image-min-tokens 4 --image-max-tokens 8");
  EXPECT_EQ(small.exit_code, 0) << small.output;
  // 240x60 with 4..8 tokens of 32x32 (4096..8192 pixels): 256x64 is too large, so beta = sqrt(14400 / 8192) and
  // floor(60/beta/32)*32 = 32, floor(240/beta/32)*32 = 160 -> grid 1x2x10, 5 merged tokens.
  EXPECT_NE(small.output.find("240x60 -> 160x32, grid 1x2x10, 5 visual tokens"), std::string::npos) << small.output;
}

TEST(CliImages, GroundingPrintsJsonEvenWithoutBoxes) {
  const auto result = run_cli("run -m " + model_dir() + " --image " + image("shapes_70x50.png") +
                                  " -p 'Locate the shapes.' --temp 0 -n 3 --grounding",
                              /*with_stderr=*/false);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output.substr(result.output.size() - 3), "[]\n") << result.output;
}

TEST(CliImageErrors, TruncatedPng) {
  TempDir dir;
  testing::write_file(dir.file("cut.png"), testing::read_file(image("shapes_150x97.png")).substr(0, 300));
  expect_image_error(dir.file("cut.png"), "", "truncated");
}

TEST(CliImageErrors, CorruptBytes) {
  TempDir dir;
  std::string junk(2000, '\0');
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919) % 251);
  testing::write_file(dir.file("junk.jpg"), junk);
  expect_image_error(dir.file("junk.jpg"), "", "not a recognised image");
}

TEST(CliImageErrors, CorruptJpegBody) {
  TempDir dir;
  testing::write_file(dir.file("bad.jpg"), std::string("\xff\xd8\xff\xe0", 4) + std::string(500, '\x13'));
  expect_image_error(dir.file("bad.jpg"), "", "JPEG");
}

TEST(CliImageErrors, UnsupportedFormat) {
  TempDir dir;
  testing::write_file(dir.file("scan.tif"), std::string("II*\0", 4) + std::string(100, '\0'));
  expect_image_error(dir.file("scan.tif"), "", "unsupported image format TIFF");
}

TEST(CliImageErrors, AspectRatioOver200) {
  TempDir dir;
  testing::write_file(dir.file("strip.bmp"), testing::bmp_bytes(2010, 10));
  expect_image_error(dir.file("strip.bmp"), "", "aspect ratio must be smaller than 200");
}

TEST(CliImageErrors, OverTheInputPixelCap) {
  expect_image_error(image("shapes_150x97.png"), "--max-input-pixels 1000", "over the input limit of 1000 pixels");
}

TEST(CliImageErrors, MissingFile) { expect_image_error("/nonexistent/cat.png", "", "cannot open"); }

}  // namespace
}  // namespace qwen3vl
