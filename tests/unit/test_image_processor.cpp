// smart_resize (transformers and qwen-vl-utils), preprocessor_config.json loading, normalization values and the
// patch order of Qwen2VLImageProcessor._preprocess. Expected sizes were produced by the Python functions themselves
// (transformers.models.qwen2_vl.image_processing_qwen2_vl.smart_resize, qwen_vl_utils.vision_process.smart_resize).
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "test_util.h"
#include "vision/image_processor.h"

namespace qwen3vl {
namespace {

struct SizeCase {
  int64_t height, width, expected_height, expected_width;
};

TEST(SmartResize, WorkedExamplesAtTheReleasedBudget) {
  // (h, w) -> (h_bar, w_bar) with the released budget, and the number of merged tokens.
  const struct {
    int64_t h, w, h_bar, w_bar, tokens;
  } cases[] = {{1365, 2048, 1376, 2048, 2752}, {480, 640, 480, 640, 300},      {224, 224, 256, 256, 64},
               {720, 1280, 704, 1280, 880},    {1080, 1920, 1088, 1920, 2040}, {4000, 6000, 3328, 4992, 16224},
               {48, 80, 224, 352, 77}};
  for (const auto& c : cases) {
    const auto [h_bar, w_bar] = smart_resize(c.h, c.w, 32, 65536, 16777216);
    EXPECT_EQ(h_bar, c.h_bar) << c.h << "x" << c.w;
    EXPECT_EQ(w_bar, c.w_bar) << c.h << "x" << c.w;
    EXPECT_EQ(GridTHW({1, h_bar / 16, w_bar / 16}).merged_tokens(), c.tokens) << c.h << "x" << c.w;
  }
}

TEST(SmartResize, RoundsHalfToEvenLikePython) {
  // 720/32 = 22.5 -> 22 (std::round would give 23); 80/32 = 2.5 -> 2; 112/32 = 3.5 -> 4; 592/32 = 18.5 -> 18.
  EXPECT_EQ(smart_resize(720, 1280, 32, 65536, 16777216).first, 704);
  EXPECT_EQ(smart_resize(112, 592, 32, 65536, 16777216), std::make_pair(int64_t{128}, int64_t{576}));
  EXPECT_EQ(smart_resize(80, 1104, 32, 1, 16777216), std::make_pair(int64_t{64}, int64_t{1088}));
}

TEST(SmartResize, MatchesTransformersOnATable) {
  const SizeCase defaults[] = {
      {1, 200, 32, 3648},       {200, 1, 3648, 32},       {30, 4500, 32, 4512},      {112, 592, 128, 576},
      {1365, 2048, 1376, 2048}, {3, 5, 224, 352},         {7000, 7000, 4096, 4096},  {4097, 4096, 4096, 4096},
      {15, 16, 256, 288},       {33, 17, 384, 192},       {100000, 600, 52864, 288}, {5000, 25, 4992, 32},
      {7303, 771, 7296, 768},   {1615, 2132, 1600, 2144}, {1633, 7211, 1632, 7200},  {7823, 5239, 4992, 3328},
      {355, 848, 352, 832},     {2990, 3898, 2976, 3904}, {5591, 4311, 4640, 3584},  {2383, 1438, 2368, 1440},
      {6223, 6611, 3968, 4192}, {295, 1023, 288, 1024},   {4069, 3521, 4064, 3520},  {7990, 4651, 5344, 3104},
      {3781, 3876, 3776, 3872}, {5997, 5281, 4352, 3840}, {1556, 6640, 1568, 6656},  {6810, 8606, 3616, 4576}};
  for (const auto& c : defaults)
    EXPECT_EQ(smart_resize(c.height, c.width, 32, 65536, 16777216), std::make_pair(c.expected_height, c.expected_width))
        << c.height << "x" << c.width;
  const SizeCase small_budget[] = {
      {1, 200, 32, 928}, {200, 1, 928, 32},      {30, 4500, 32, 2432},   {112, 592, 64, 448}, {1365, 2048, 160, 224},
      {3, 5, 64, 96},    {7000, 7000, 192, 192}, {4097, 4096, 192, 192}, {15, 16, 64, 96},    {33, 17, 96, 64}};
  for (const auto& c : small_budget)
    EXPECT_EQ(smart_resize(c.height, c.width, 32, 4096, 40000), std::make_pair(c.expected_height, c.expected_width))
        << c.height << "x" << c.width;
}

TEST(SmartResize, AspectRatioOver200IsAnError) {
  EXPECT_NO_THROW(smart_resize(1, 200, 32, 65536, 16777216));
  try {
    smart_resize(1, 201, 32, 65536, 16777216);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("aspect ratio must be smaller than 200"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(smart_resize(10000, 49, 32, 65536, 16777216), Error);
  EXPECT_THROW(smart_resize_qwen_vl_utils(1, 201, 32, 4096, 16777216), Error);
}

TEST(SmartResizeQwenVlUtils, WorkedExamplesAtItsImageDefaults) {
  const int64_t min_pixels = 4 * 32 * 32, max_pixels = 16384 * 32 * 32;  // qwen-vl-utils' image defaults
  EXPECT_EQ(smart_resize_qwen_vl_utils(224, 224, 32, min_pixels, max_pixels),
            std::make_pair(int64_t{224}, int64_t{224}));
  EXPECT_EQ(smart_resize_qwen_vl_utils(100, 100, 32, min_pixels, max_pixels), std::make_pair(int64_t{96}, int64_t{96}));
  EXPECT_EQ(smart_resize_qwen_vl_utils(48, 80, 32, min_pixels, max_pixels), std::make_pair(int64_t{64}, int64_t{64}));
  // Where it differs from transformers: max(factor, round(.)) first, so 1x200 is 32x192, not 32x3648 ...
  EXPECT_EQ(smart_resize_qwen_vl_utils(1, 200, 32, min_pixels, max_pixels), std::make_pair(int64_t{32}, int64_t{192}));
  // ... and no max(factor, .) clamp when shrinking, so a side can become 0.
  EXPECT_EQ(smart_resize_qwen_vl_utils(1, 200, 32, 512, 1024), std::make_pair(int64_t{0}, int64_t{448}));
  EXPECT_EQ(smart_resize_qwen_vl_utils(7823, 5239, 32, min_pixels, max_pixels),
            std::make_pair(int64_t{4992}, int64_t{3328}));
  EXPECT_THROW(smart_resize_qwen_vl_utils(100, 100, 32, 2000, 1000), Error);  // its max >= min assert
}

TEST(ImageProcessorConfig, MissingFileGivesTheReleasedValues) {
  const ImageProcessorConfig config = load_image_processor_config("/nonexistent/preprocessor_config.json");
  EXPECT_EQ(config.min_pixels, 65536);
  EXPECT_EQ(config.max_pixels, 16777216);
  EXPECT_EQ(config.patch_size, 16);
  EXPECT_EQ(config.temporal_patch_size, 2);
  EXPECT_EQ(config.merge_size, 2);
  EXPECT_EQ(config.image_mean[0], 0.5f);
  EXPECT_EQ(config.image_std[2], 0.5f);
  EXPECT_DOUBLE_EQ(config.rescale_factor, 1.0 / 255.0);
}

TEST(ImageProcessorConfig, ReadsSizeAndLegacyKeys) {
  testing::TempDir dir;
  testing::write_file(dir.file("a.json"), R"({"size": {"shortest_edge": 4096, "longest_edge": 65536},
      "patch_size": 14, "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": 0.25,
      "rescale_factor": 0.00392156862745098, "do_normalize": false, "resample": 3})");
  ImageProcessorConfig config = load_image_processor_config(dir.file("a.json"));
  EXPECT_EQ(config.min_pixels, 4096);
  EXPECT_EQ(config.max_pixels, 65536);
  EXPECT_EQ(config.patch_size, 14);
  EXPECT_EQ(config.image_mean[0], 0.48145466f);
  EXPECT_EQ(config.image_std[1], 0.25f);
  EXPECT_FALSE(config.do_normalize);

  // Older configs: size.min_pixels/max_pixels, and top-level min_pixels/max_pixels that override size.
  testing::write_file(dir.file("b.json"), R"({"size": {"min_pixels": 100, "max_pixels": 200}, "max_pixels": 300})");
  config = load_image_processor_config(dir.file("b.json"));
  EXPECT_EQ(config.min_pixels, 100);
  EXPECT_EQ(config.max_pixels, 300);

  // The fixture checkpoints' file.
  config = load_image_processor_config(testing::model_fixture("tiny-fp32-tied") + "/preprocessor_config.json");
  EXPECT_EQ(config.min_pixels, 4096);
  EXPECT_EQ(config.max_pixels, 65536);
}

TEST(ImageProcessorConfig, BadValuesNameTheFileAndKey) {
  testing::TempDir dir;
  const auto expect_error = [&](const std::string& json, const std::string& needle) {
    testing::write_file(dir.file("p.json"), json);
    try {
      load_image_processor_config(dir.file("p.json"));
      ADD_FAILURE() << "no error for " << json;
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(dir.file("p.json")), std::string::npos) << message;
      EXPECT_NE(message.find(needle), std::string::npos) << message;
    }
  };
  expect_error("{not json", "invalid JSON");
  expect_error(R"({"size": {"shortest_edge": -5}})", "size.shortest_edge");
  expect_error(R"({"patch_size": "16"})", "patch_size");
  expect_error(R"({"image_mean": [0.5, 0.5]})", "image_mean");
  expect_error(R"({"image_std": [0.5, 0, 0.5]})", "image_std");
  expect_error(R"({"resample": 2})", "resample");
  expect_error(R"({"do_resize": "yes"})", "do_resize");
}

// An image whose pixel (x, y) has R = x, G = y, B = (x + y) mod 256, so each value says where it came from.
Image coordinate_image(int width, int height) {
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.resize(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &image.rgb[(static_cast<size_t>(y) * width + x) * 3];
      p[0] = static_cast<uint8_t>(x);
      p[1] = static_cast<uint8_t>(y);
      p[2] = static_cast<uint8_t>((x + y) % 256);
    }
  return image;
}

TEST(Patchify, RowAndElementOrderOfTransformersPatchify) {
  ImageProcessorConfig config;
  config.do_normalize = false;
  config.do_rescale = false;                     // pixel_values are then the uint8 values themselves
  const Image image = coordinate_image(96, 64);  // grid 4 x 6 patches of 16
  const ProcessedImage out = patchify_image(image, config);
  ASSERT_EQ(out.grid.t, 1);
  ASSERT_EQ(out.grid.h, 4);
  ASSERT_EQ(out.grid.w, 6);
  ASSERT_EQ(out.pixel_values.size(), static_cast<size_t>(24 * 1536));
  const int64_t h = out.grid.h, w = out.grid.w;
  for (int64_t s = 0; s < out.grid.patches(); ++s) {
    // _preprocess's permute as index math
    const int64_t r = s % (h * w), bh = r / (w * 2), rem = r % (w * 2), bw = rem / 4, ih = (rem % 4) / 2, iw = rem % 2;
    const int64_t row = bh * 2 + ih, col = bw * 2 + iw;
    for (int c = 0; c < 3; ++c)
      for (int tt = 0; tt < 2; ++tt)
        for (int dy = 0; dy < 16; dy += 5)
          for (int dx = 0; dx < 16; dx += 3) {
            const int64_t x = col * 16 + dx, y = row * 16 + dy;
            const float expected = c == 0 ? x : (c == 1 ? y : (x + y) % 256);
            ASSERT_EQ(out.pixel_values[s * 1536 + c * 512 + tt * 256 + dy * 16 + dx], expected)
                << "s=" << s << " c=" << c << " t=" << tt << " dy=" << dy << " dx=" << dx;
          }
  }
}

TEST(Patchify, FusedRescaleNormalizeValues) {
  // transformers: (float(x) - 0.5f*255) / (0.5f*255) in float32, i.e. (x - 127.5f) / 127.5f.
  ImageProcessorConfig config;
  Image image;
  image.width = 32;
  image.height = 32;
  image.rgb.resize(32 * 32 * 3);
  for (size_t i = 0; i < image.rgb.size(); ++i) image.rgb[i] = static_cast<uint8_t>(i % 256);
  const ProcessedImage out = patchify_image(image, config);
  for (int v : {0, 1, 127, 128, 254, 255}) {
    // Pixel 0 of patch 0 has channel value image.rgb[c]; find a pixel with value v in channel 0 instead.
    const float expected = (static_cast<float>(v) - 127.5f) / 127.5f;
    bool found = false;
    for (int64_t dy = 0; dy < 16 && !found; ++dy)
      for (int64_t dx = 0; dx < 16 && !found; ++dx)
        if (image.rgb[(dy * 32 + dx) * 3] == v) {
          EXPECT_EQ(out.pixel_values[dy * 16 + dx], expected) << v;
          found = true;
        }
  }
  EXPECT_EQ((0.0f - 127.5f) / 127.5f, -1.0f);
  EXPECT_EQ((255.0f - 127.5f) / 127.5f, 1.0f);
}

TEST(Patchify, RejectsSizesThatDoNotTile) {
  ImageProcessorConfig config;
  EXPECT_THROW(patchify_image(coordinate_image(48, 32), config), Error);
  config.do_resize = false;
  EXPECT_THROW(preprocess_image(coordinate_image(48, 32), config), Error);
  EXPECT_NO_THROW(preprocess_image(coordinate_image(64, 32), config));
}

TEST(PreprocessImage, BudgetOverridesAndRules) {
  const Image image = coordinate_image(80, 48);
  ImageProcessorConfig config;
  ProcessedImage out = preprocess_image(image, config);
  EXPECT_EQ(out.resized_width, 352);
  EXPECT_EQ(out.resized_height, 224);
  EXPECT_EQ(out.original_width, 80);
  EXPECT_EQ(out.original_height, 48);
  PixelBudget budget;
  budget.min_pixels = 1024;
  out = preprocess_image(image, config, budget);
  EXPECT_EQ(out.resized_width, 64);  // 80/32 = 2.5 -> 2 (to even), 48/32 = 1.5 -> 2; 64*64 >= 1024
  EXPECT_EQ(out.resized_height, 64);
  out = preprocess_image(image, config, {}, ResizeRule::QwenVlUtils);  // its own min of 4096 pixels
  EXPECT_EQ(out.resized_width, 64);
  EXPECT_EQ(out.resized_height, 64);
  EXPECT_EQ(out.pixel_values.size(), static_cast<size_t>(16 * 1536));
  budget.min_pixels = 256;
  budget.max_pixels = 512;  // qwen-vl-utils can shrink a side to 0: refused
  EXPECT_THROW(preprocess_image(coordinate_image(400, 2), config, budget, ResizeRule::QwenVlUtils), Error);
}

}  // namespace
}  // namespace qwen3vl
