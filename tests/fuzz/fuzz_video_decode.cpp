// Request videos through FFmpeg: the bytes as a file, VideoReader (probe, packet scan), plan_video with the
// processor defaults, and at most 4 of the planned frames decoded and converted. Each frame must hold the bytes
// their own width and height say (width * height * 3 bytes).
#include "core/error.h"
#include "fuzz_common.h"
#include "vision/video_decode.h"
#include "vision/video_processor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qwen3vl::fuzz::TempDir dir;
  const std::string path = dir.write("video", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    qwen3vl::VideoReader reader(path);
    const qwen3vl::VideoInfo& info = reader.info();
    const qwen3vl::ProcessedVideo plan = qwen3vl::plan_video(info, qwen3vl::VideoProcessorConfig{});
    std::vector<int64_t> indices = plan.frame_indices;
    if (indices.size() > 4) indices.resize(4);
    reader.read_frames(indices, [&](size_t, int64_t, const qwen3vl::Image& frame) {
      qwen3vl::fuzz::check(frame.rgb.size() == size_t(frame.width) * size_t(frame.height) * 3, "frame size");
    });
  } catch (const qwen3vl::Error&) {
  }
  return 0;
}
