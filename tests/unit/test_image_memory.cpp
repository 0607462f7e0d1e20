// Peak memory of decode + preprocess, measured in a forked child (so other tests' allocations do not count) as the
// growth of the kernel's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs).
//
// Measured here (x86-64, glibc): 4096x4096 JPEG with the released budget (no resize, 65536 patches): peak growth
// ~436 MiB = 48 MiB decoded bitmap + 384 MiB pixel_values (65536 x 1536 float32: the API's own output, two
// identical frames) + the file bytes; nothing else image-sized is ever allocated. With max_pixels = 1M the same
// input peaks at ~90 MiB: the bitmap, then only budget-sized buffers.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include <jpeglib.h>  // after <cstdio>: it needs size_t and FILE

#include "test_util.h"
#include "vision/image_decode.h"
#include "vision/image_processor.h"

namespace qwen3vl {
namespace {

constexpr int64_t kMiB = 1024 * 1024;

// A 4096x4096 photo-like JPEG (smooth shading plus texture), encoded with libjpeg at quality 90.
std::string encode_test_jpeg(int width, int height) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr errors;
  cinfo.err = jpeg_std_error(&errors);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 90, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<uint8_t> row(static_cast<size_t>(width) * 3);
  uint32_t state = 1;
  while (cinfo.next_scanline < cinfo.image_height) {
    const int y = static_cast<int>(cinfo.next_scanline);
    for (int x = 0; x < width; ++x) {
      state = state * 1664525u + 1013904223u;
      const int noise = static_cast<int>(state >> 28) - 8;
      row[x * 3 + 0] = static_cast<uint8_t>(std::clamp((x * 255) / width + noise, 0, 255));
      row[x * 3 + 1] = static_cast<uint8_t>(std::clamp((y * 255) / height + noise, 0, 255));
      row[x * 3 + 2] = static_cast<uint8_t>(std::clamp(((x / 64 + y / 64) % 2) * 160 + 40 + noise, 0, 255));
    }
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::string bytes(reinterpret_cast<const char*>(buffer), size);
  std::free(buffer);
  return bytes;
}

int64_t status_kib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::strlen(key) + 1));
  return -1;
}

struct Measurement {
  bool measured = false;  // false where /proc/self/clear_refs cannot reset the high-water mark
  int64_t peak_growth = 0;
  int64_t grid_h = 0, grid_w = 0;
  int64_t pixel_values_bytes = 0;
};

// Decodes and preprocesses `path` in a child process and returns the growth of its peak RSS over the RSS it had
// right before (the child inherits this process's pages; only what it adds is counted).
Measurement measure_in_child(const std::string& path, const PixelBudget& budget) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    Measurement m;
    {
      std::ofstream clear("/proc/self/clear_refs");
      clear << "5";  // reset VmHWM to the current RSS
    }
    const int64_t before = status_kib("VmRSS:");
    m.measured = before > 0 && status_kib("VmHWM:") <= before + 1024;
    try {
      const Image image = decode_image_file(path);
      const ProcessedImage out = preprocess_image(image, ImageProcessorConfig{}, budget);
      m.grid_h = out.grid.h;
      m.grid_w = out.grid.w;
      m.pixel_values_bytes = static_cast<int64_t>(out.pixel_values.size() * sizeof(float));
      m.peak_growth = (status_kib("VmHWM:") - before) * 1024;
    } catch (...) {
      m.measured = false;
    }
    const ssize_t written = write(fds[1], &m, sizeof m);
    _exit(written == static_cast<ssize_t>(sizeof m) ? 0 : 1);
  }
  close(fds[1]);
  Measurement m;
  const ssize_t got = read(fds[0], &m, sizeof m);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got != static_cast<ssize_t>(sizeof m)) return {};
  return m;
}

TEST(ImageMemory, Peak4096SquareJpegIsTheBitmapPlusTheBudgetSizedOutput) {
  testing::TempDir dir;
  const std::string path = dir.file("big.jpg");
  const std::string jpeg = encode_test_jpeg(4096, 4096);
  testing::write_file(path, jpeg);
  const int64_t bitmap = int64_t{4096} * 4096 * 3;

  const Measurement full = measure_in_child(path, {});
  if (!full.measured) GTEST_SKIP() << "cannot reset the peak-RSS counter here (/proc/self/clear_refs)";
  EXPECT_EQ(full.grid_h, 256);
  EXPECT_EQ(full.grid_w, 256);
  EXPECT_EQ(full.pixel_values_bytes, int64_t{65536} * 1536 * 4);
  std::printf(
      "[ memory ] 4096x4096 JPEG (%.1f MiB file), released budget: peak growth %.1f MiB "
      "(bitmap %.1f MiB + pixel_values %.1f MiB)\n",
      jpeg.size() / double(kMiB), full.peak_growth / double(kMiB), bitmap / double(kMiB),
      full.pixel_values_bytes / double(kMiB));
  // Nothing image-sized besides the bitmap and the output: allow the file bytes and 24 MiB of slack.
  EXPECT_LT(full.peak_growth, bitmap + full.pixel_values_bytes + static_cast<int64_t>(jpeg.size()) + 24 * kMiB);

  PixelBudget small;
  small.max_pixels = 1 << 20;  // 1024 merged tokens
  const Measurement reduced = measure_in_child(path, small);
  ASSERT_TRUE(reduced.measured);
  EXPECT_EQ(reduced.grid_h * reduced.grid_w * 256, int64_t{1024} * 1024);
  std::printf("[ memory ] same JPEG, max_pixels 1048576: peak growth %.1f MiB (pixel_values %.1f MiB)\n",
              reduced.peak_growth / double(kMiB), reduced.pixel_values_bytes / double(kMiB));
  // Downscaled before anything bigger than the bitmap exists: bitmap + resize intermediate (4096 rows x 1024) +
  // resized image + pixel_values, all but the first sized by the budget.
  EXPECT_LT(reduced.peak_growth, bitmap + int64_t{4096} * 1024 * 3 + int64_t{1024} * 1024 * 3 +
                                     reduced.pixel_values_bytes + static_cast<int64_t>(jpeg.size()) + 24 * kMiB);
}

}  // namespace
}  // namespace qwen3vl
