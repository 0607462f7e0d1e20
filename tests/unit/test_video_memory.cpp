// Peak memory of decoding + sampling + preprocessing a video, measured in a forked child as the growth of the
// resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs), as test_image_memory does.
//
// Bound: pixel_values (the output: T*h*w*3 float32, set by the pixel budget) + 160 MiB for everything else: FFmpeg's
// demuxer and decoder state (an H.264 1080p decoder holds up to 16 reference frames of 3 MiB), one full-resolution
// RGB frame (6 MiB at 1080p), its padded swscale staging copy, and one resized frame. Nothing grows with the video's
// length: frames are converted and resized one at a time and only the sampled ones are converted.
// Measured (scripts/bench_video_memory.sh, 10 min of 1920x1080 at 30 fps, 18000 frames, H.264): 768 frames
// sampled, 224x128 each, pixel_values 252 MiB, peak growth 280 MiB (28 MiB besides the output), 85 s.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "memory_probe.h"
#include "test_util.h"
#include "vision/video_processor.h"

namespace qwen3vl {
namespace {

constexpr int64_t kMiB = 1024 * 1024;
constexpr int64_t kOverheadBound = 160 * kMiB;

struct Preprocessed {
  int64_t pixel_values_bytes = 0, frames = 0, height = 0, width = 0, total_frames = 0;
};
using Measurement = testing::ChildPeak<Preprocessed>;

Measurement measure_in_child(const std::string& path) {
  return testing::peak_in_child<Preprocessed>([&path](Preprocessed& result) {
    VideoProcessorConfig config;  // the released budget
    config.min_pixels = 4096;
    config.max_pixels = 25165824;
    const ProcessedVideo video = preprocess_video_file(path, config);
    result.pixel_values_bytes = static_cast<int64_t>(video.pixel_values.size() * sizeof(float));
    result.frames = static_cast<int64_t>(video.frame_indices.size());
    result.height = video.resized_height;
    result.width = video.resized_width;
    result.total_frames = video.total_frames;
  });
}

void report_and_check(const char* what, const Measurement& m) {
  std::printf("[ memory ] %s: %lld of %lld frames at %lldx%lld, pixel_values %.1f MiB, peak growth %.1f MiB "
              "(bound: pixel_values + %lld MiB)\n",
              what, static_cast<long long>(m.frames), static_cast<long long>(m.total_frames),
              static_cast<long long>(m.width), static_cast<long long>(m.height), m.pixel_values_bytes / double(kMiB),
              m.peak.bytes / double(kMiB), static_cast<long long>(kOverheadBound / kMiB));
  EXPECT_LT(m.peak.bytes, m.pixel_values_bytes + kOverheadBound);
}

// CI: the 40 s test file (1200 frames, 80 sampled). Small, but it runs the same code path under the same bound.
TEST(VideoMemory, PeakIsTheOutputPlusABoundedDecoder) {
  const Measurement m = measure_in_child(testing::fixtures_dir() + "/videos/cfr30_40s.webm");
  if (!m.peak.measured) GTEST_SKIP() << "no peak-RSS measurement here (/proc/self/clear_refs refused, or a sanitizer heap)";
  EXPECT_EQ(m.frames, 80);
  report_and_check("40 s 64x48 WebM", m);
}

// Manual: scripts/bench_video_memory.sh generates a 10-minute 1080p video and sets QWEN3VL_VIDEO_BENCH.
TEST(VideoMemoryBenchmark, LongVideoPeakIsBudgetBound) {
  const char* path = std::getenv("QWEN3VL_VIDEO_BENCH");
  if (!path) GTEST_SKIP() << "manual benchmark: run scripts/bench_video_memory.sh";
  const Measurement m = measure_in_child(path);
  ASSERT_TRUE(m.peak.measured) << "could not measure " << path;
  report_and_check(path, m);
}

}  // namespace
}  // namespace qwen3vl
