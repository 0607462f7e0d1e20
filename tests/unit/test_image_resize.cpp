// Properties of the uint8 antialiased bicubic resize (bit-exactness against torchvision is in
// tests/golden/test_image_preprocess_golden.cpp): weights as ATen quantizes them, identity and constant images,
// and the one-axis / two-axis passes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "vision/resize.h"

namespace qwen3vl {
namespace {

Image gradient(int width, int height) {
  Image image;
  image.width = width;
  image.height = height;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      image.rgb.push_back(static_cast<uint8_t>(x * 255 / std::max(1, width - 1)));
      image.rgb.push_back(static_cast<uint8_t>(y * 255 / std::max(1, height - 1)));
      image.rgb.push_back(static_cast<uint8_t>((x * 7 + y * 13) % 256));
    }
  return image;
}

TEST(ResizeWeights, QuantizedLikeATen) {
  for (const auto& [in, out] : std::vector<std::pair<int, int>>{{100, 37}, {37, 100}, {4096, 32}, {5, 5}, {1, 64}}) {
    const ResizeAxisWeights axis = compute_bicubic_aa_weights(in, out);
    ASSERT_GT(axis.precision, 0u);
    ASSERT_LE(axis.precision, 22u);
    // support = 2 * max(scale, 1); taps = ceil(support) * 2 + 1
    const double scale = static_cast<double>(in) / out;
    EXPECT_EQ(axis.taps_stride, static_cast<int64_t>(std::ceil(2 * std::max(scale, 1.0))) * 2 + 1);
    for (int i = 0; i < out; ++i) {
      ASSERT_GE(axis.first[i], 0);
      ASSERT_LE(axis.first[i] + axis.count[i], in);
      int64_t sum = 0;
      for (int64_t k = 0; k < axis.count[i]; ++k) sum += axis.weights[i * axis.taps_stride + k];
      // The weights were normalized to 1 before rounding: the sum is 2^precision up to the rounding of each tap.
      EXPECT_LE(std::abs(sum - (int64_t{1} << axis.precision)), axis.count[i]) << in << "->" << out << " at " << i;
    }
  }
  // Upscaling keeps support 2 (4 taps used, 5 slots); the largest weight of an identity-size axis is exactly 1.
  EXPECT_EQ(compute_bicubic_aa_weights(10, 20).taps_stride, 5);
  const ResizeAxisWeights same = compute_bicubic_aa_weights(7, 7);
  EXPECT_EQ(same.weights[3 * same.taps_stride + (3 - same.first[3])], 1 << same.precision);
}

TEST(Resize, SameSizeIsACopy) {
  const Image image = gradient(33, 17);
  const Image out = resize_bicubic_antialias(image, 33, 17);
  EXPECT_EQ(out.rgb, image.rgb);
}

TEST(Resize, ConstantImagesStayConstant) {
  for (uint8_t value : {0, 1, 128, 254, 255}) {
    Image image;
    image.width = 51;
    image.height = 29;
    image.rgb.assign(51 * 29 * 3, value);
    for (const auto& [w, h] : std::vector<std::pair<int, int>>{{13, 7}, {160, 96}, {51, 100}, {200, 29}, {1, 1}}) {
      const Image out = resize_bicubic_antialias(image, w, h);
      ASSERT_EQ(out.rgb.size(), static_cast<size_t>(w * h * 3));
      for (uint8_t v : out.rgb) ASSERT_EQ(v, value) << int(value) << " -> " << w << "x" << h;
    }
  }
}

TEST(Resize, OneAxisResizeLeavesTheOtherAxisAlone) {
  // Only the changed axis runs a pass, so a height-only resize of an image constant along y keeps every row equal
  // to the input row.
  Image image = gradient(40, 1);
  Image tall;
  tall.width = 40;
  tall.height = 9;
  for (int y = 0; y < 9; ++y) tall.rgb.insert(tall.rgb.end(), image.rgb.begin(), image.rgb.end());
  const Image out = resize_bicubic_antialias(tall, 40, 4);
  for (int y = 0; y < 4; ++y)
    EXPECT_TRUE(std::equal(image.rgb.begin(), image.rgb.end(), out.rgb.begin() + y * 40 * 3)) << y;
}

TEST(Resize, RejectsBadSizes) {
  const Image image = gradient(4, 4);
  EXPECT_THROW(resize_bicubic_antialias(image, 0, 4), Error);
  Image broken = image;
  broken.rgb.pop_back();
  EXPECT_THROW(resize_bicubic_antialias(broken, 2, 2), Error);
}

}  // namespace
}  // namespace qwen3vl
