// Peak memory of decode + preprocess, measured in a forked child (so other tests' allocations do not count) as the
// growth of the kernel's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs).
//
// Measured here (x86-64, glibc): 4096x4096 JPEG with the released budget (no resize, 65536 patches): peak growth
// ~436 MiB = 48 MiB decoded bitmap + 384 MiB pixel_values (65536 x 1536 float32: the API's own output, two
// identical frames) + the file bytes; nothing else image-sized is ever allocated. With max_pixels = 1M the same
// input peaks at ~90 MiB: the bitmap, then only budget-sized buffers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "memory_probe.h"
#include "test_util.h"
#include "vision/image_decode.h"
#include "vision/image_processor.h"

namespace qwen3vl {
namespace {

constexpr int64_t kMiB = 1024 * 1024;

// A 4096x4096 photo-like JPEG (smooth shading plus texture), encoded with libjpeg at quality 90.
std::string encode_test_jpeg(int width, int height) {
  uint32_t state = 1;
  return testing::jpeg_bytes(width, height, 3, 90, /*progressive=*/false, [&](int y, uint8_t* row) {
    for (int x = 0; x < width; ++x) {
      state = state * 1664525u + 1013904223u;
      const int noise = static_cast<int>(state >> 28) - 8;
      row[x * 3 + 0] = static_cast<uint8_t>(std::clamp((x * 255) / width + noise, 0, 255));
      row[x * 3 + 1] = static_cast<uint8_t>(std::clamp((y * 255) / height + noise, 0, 255));
      row[x * 3 + 2] = static_cast<uint8_t>(std::clamp(((x / 64 + y / 64) % 2) * 160 + 40 + noise, 0, 255));
    }
  });
}

struct Preprocessed {
  int64_t grid_h = 0, grid_w = 0;
  int64_t pixel_values_bytes = 0;
};

// Decodes and preprocesses `path` in a child process, with the growth of its peak RSS.
testing::ChildPeak<Preprocessed> measure_in_child(const std::string& path, const PixelBudget& budget) {
  return testing::peak_in_child<Preprocessed>([&](Preprocessed& result) {
    const Image image = decode_image_file(path);
    const ProcessedImage out = preprocess_image(image, ImageProcessorConfig{}, budget);
    result.grid_h = out.grid.h;
    result.grid_w = out.grid.w;
    result.pixel_values_bytes = static_cast<int64_t>(out.pixel_values.size() * sizeof(float));
  });
}

TEST(ImageMemory, Peak4096SquareJpegIsTheBitmapPlusTheBudgetSizedOutput) {
  testing::TempDir dir;
  const std::string path = dir.file("big.jpg");
  const std::string jpeg = encode_test_jpeg(4096, 4096);
  testing::write_file(path, jpeg);
  const int64_t bitmap = int64_t{4096} * 4096 * 3;

  const auto full = measure_in_child(path, {});
  if (!full.peak.measured) GTEST_SKIP() << "no peak-RSS measurement here (/proc/self/clear_refs refused, or a sanitizer heap)";
  EXPECT_EQ(full.grid_h, 256);
  EXPECT_EQ(full.grid_w, 256);
  EXPECT_EQ(full.pixel_values_bytes, int64_t{65536} * 1536 * 4);
  std::printf(
      "[ memory ] 4096x4096 JPEG (%.1f MiB file), released budget: peak growth %.1f MiB "
      "(bitmap %.1f MiB + pixel_values %.1f MiB)\n",
      jpeg.size() / double(kMiB), full.peak.bytes / double(kMiB), bitmap / double(kMiB),
      full.pixel_values_bytes / double(kMiB));
  // Nothing image-sized besides the bitmap and the output: allow the file bytes and 24 MiB of slack.
  EXPECT_LT(full.peak.bytes, bitmap + full.pixel_values_bytes + static_cast<int64_t>(jpeg.size()) + 24 * kMiB);

  PixelBudget small;
  small.max_pixels = 1 << 20;  // 1024 merged tokens
  const auto reduced = measure_in_child(path, small);
  ASSERT_TRUE(reduced.peak.measured);
  EXPECT_EQ(reduced.grid_h * reduced.grid_w * 256, int64_t{1024} * 1024);
  std::printf("[ memory ] same JPEG, max_pixels 1048576: peak growth %.1f MiB (pixel_values %.1f MiB)\n",
              reduced.peak.bytes / double(kMiB), reduced.pixel_values_bytes / double(kMiB));
  // Downscaled before anything bigger than the bitmap exists: bitmap + resize intermediate (4096 rows x 1024) +
  // resized image + pixel_values, all but the first sized by the budget.
  EXPECT_LT(reduced.peak.bytes, bitmap + int64_t{4096} * 1024 * 3 + int64_t{1024} * 1024 * 3 +
                                    reduced.pixel_values_bytes + static_cast<int64_t>(jpeg.size()) + 24 * kMiB);
}

}  // namespace
}  // namespace qwen3vl
