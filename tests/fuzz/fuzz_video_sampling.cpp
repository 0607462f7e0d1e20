// Which frames a video request samples (vision/video_sampling.h): sample_frames with any frame count and native fps
// (a file's header or packet scan gives those) and request options in the ranges server::parse_chat_request accepts,
// then the timestamps of the sampled frames. The sampled indices must lie in the stream and never decrease.
#include "core/error.h"
#include "fuzz_common.h"
#include "vision/video_sampling.h"

namespace {

// A value in [low, high], or none.
std::optional<double> maybe_number(qwen3vl::fuzz::InputReader& in, double low, double high) {
  if (!in.flag()) return std::nullopt;
  return low + (high - low) * static_cast<double>(in.u32()) / UINT32_MAX;
}

std::optional<int64_t> maybe_count(qwen3vl::fuzz::InputReader& in) {
  if (!in.flag()) return std::nullopt;
  return in.flag() ? in.in_range(1, 100000) : in.in_range(1, 64);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qwen3vl::fuzz::InputReader in(data, size);
  const int64_t total_frames = in.flag() ? in.in_range(-1, 1000) : in.in_range(0, int64_t{1} << 40);
  const std::optional<double> native_fps = in.flag() ? std::optional<double>(in.any_double()) : std::nullopt;
  qwen3vl::FrameSamplingOptions options;
  options.rule = in.flag() ? qwen3vl::FrameSamplingRule::QwenVlUtils : qwen3vl::FrameSamplingRule::Transformers;
  options.fps = maybe_number(in, 1e-3, 240.0);
  options.num_frames = maybe_count(in);
  options.min_frames = maybe_count(in);
  options.max_frames = maybe_count(in);
  options.start_seconds = maybe_number(in, 0.0, 1e7);
  options.end_seconds = maybe_number(in, 0.0, 1e7);
  qwen3vl::FrameSamplingDefaults defaults;
  if (in.flag()) {
    defaults.fps = 0.5 + in.byte() / 32.0;
    defaults.min_frames = in.in_range(1, 64);
    defaults.max_frames = in.in_range(1, 2048);
  }
  try {
    const qwen3vl::SampledFrames sampled = qwen3vl::sample_frames(total_frames, native_fps, options, defaults, "fuzz");
    qwen3vl::fuzz::check(sampled.indices.size() <= 100000, "a bounded number of sampled frames");
    std::vector<double> times;
    for (size_t i = 0; i < sampled.indices.size(); ++i) {
      // qwen-vl-utils' float32 torch.linspace rounds past the last frame beyond 2^24 frames (as it does in Python);
      // VideoReader::read_frames refuses such an index with an Error.
      if (options.rule == qwen3vl::FrameSamplingRule::Transformers || total_frames <= (int64_t{1} << 24))
        qwen3vl::fuzz::check(sampled.indices[i] >= 0 && sampled.indices[i] < total_frames, "index inside the stream");
      qwen3vl::fuzz::check(i == 0 || sampled.indices[i] >= sampled.indices[i - 1], "indices never decrease");
      times.push_back(static_cast<double>(sampled.indices[i]) / sampled.fps);
    }
    for (double stamp : qwen3vl::frame_group_timestamps(times, in.in_range(1, 4))) qwen3vl::timestamp_text(stamp);
  } catch (const qwen3vl::Error&) {
  }
  return 0;
}
