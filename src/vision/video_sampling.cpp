#include "vision/video_sampling.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace qwen3vl {

double round_half_even(double x) {
  const double floor_x = std::floor(x);
  const double diff = x - floor_x;
  if (diff > 0.5) return floor_x + 1.0;
  if (diff < 0.5) return floor_x;
  return std::fmod(floor_x, 2.0) == 0.0 ? floor_x : floor_x + 1.0;
}

std::vector<double> numpy_linspace(double start, double stop, int64_t n) {
  std::vector<double> out(static_cast<size_t>(std::max<int64_t>(n, 0)));
  if (n <= 0) return out;
  const int64_t div = n - 1;
  const double delta = stop - start;
  if (div > 0) {
    const double step = delta / static_cast<double>(div);
    for (int64_t i = 0; i < n; ++i) {
      // numpy: y = arange(n) * step (or arange(n) / div * delta when step == 0), then y += start.
      const double y = step == 0.0 ? static_cast<double>(i) / static_cast<double>(div) * delta
                                   : static_cast<double>(i) * step;
      out[static_cast<size_t>(i)] = y + start;
    }
    out.back() = stop;
  } else {
    out[0] = 0.0 * delta + start;
  }
  return out;
}

std::vector<float> torch_linspace_f32(double start_d, double stop_d, int64_t n) {
  std::vector<float> out(static_cast<size_t>(std::max<int64_t>(n, 0)));
  if (n <= 0) return out;
  const float start = static_cast<float>(start_d), stop = static_cast<float>(stop_d);
  if (n == 1) {
    out[0] = start;
    return out;
  }
  // ATen's linspace kernel: step = (end - start) / (steps - 1) in float; the first half counts up from start, the
  // second half back from end.
  const float step = (stop - start) / static_cast<float>(n - 1);
  const int64_t halfway = n / 2;
  for (int64_t i = 0; i < n; ++i)
    out[static_cast<size_t>(i)] =
        i < halfway ? start + step * static_cast<float>(i) : stop - step * static_cast<float>(n - i - 1);
  return out;
}

namespace {

int64_t floor_to(double x, int64_t factor) { return static_cast<int64_t>(std::floor(x / factor)) * factor; }
int64_t ceil_to(double x, int64_t factor) { return static_cast<int64_t>(std::ceil(x / factor)) * factor; }

struct FrameRange {
  int64_t first = 0, last = 0, count = 0;
};

// qwen-vl-utils calculate_video_frame_range.
FrameRange frame_range(int64_t total, double fps, const FrameSamplingOptions& o, const std::string& what) {
  if (!o.start_seconds && !o.end_seconds) return {0, total - 1, total};
  if (!(fps > 0)) throw_error(what, ": start/end times need the video's frame rate, which the file does not give");
  const double max_duration = static_cast<double>(total) / fps;
  double start_clamped = 0.0, end_clamped = max_duration;
  int64_t first = 0, last = total - 1;
  if (o.start_seconds) {
    start_clamped = std::max(0.0, std::min(*o.start_seconds, max_duration));
    first = static_cast<int64_t>(std::ceil(start_clamped * fps));
  }
  if (o.end_seconds) {
    end_clamped = std::max(0.0, std::min(*o.end_seconds, max_duration));
    last = std::min(static_cast<int64_t>(std::floor(end_clamped * fps)), total - 1);
  }
  if (first >= last)
    throw_error(what, ": invalid time range: start frame ", first, " (at ", start_clamped, " s) is not before end frame ",
                last, " (at ", end_clamped, " s) of a ", max_duration, " s video (", total, " frames at ", fps, " fps)");
  return {first, last, last - first + 1};
}

}  // namespace

SampledFrames sample_frames(int64_t total_frames, std::optional<double> native_fps, const FrameSamplingOptions& o,
                            const FrameSamplingDefaults& defaults, const std::string& what) {
  if (total_frames <= 0) throw_error(what, ": the video has no frames");
  if (o.fps && !(*o.fps > 0)) throw_error(what, ": sampling fps must be > 0, got ", *o.fps);
  if (o.num_frames && *o.num_frames <= 0) throw_error(what, ": number of frames must be > 0, got ", *o.num_frames);
  if (o.min_frames && *o.min_frames <= 0) throw_error(what, ": min frames must be > 0, got ", *o.min_frames);
  if (o.max_frames && *o.max_frames <= 0) throw_error(what, ": max frames must be > 0, got ", *o.max_frames);
  SampledFrames out;
  const bool has_fps = native_fps && *native_fps > 0 && std::isfinite(*native_fps);
  out.fps = has_fps ? *native_fps : 24.0;
  out.fps_was_missing = !has_fps;

  if (o.rule == FrameSamplingRule::Transformers) {
    const FrameRange range = frame_range(total_frames, out.fps, o, what);
    out.total_frames = range.count;
    int64_t n = 0;
    if (o.num_frames) {
      n = *o.num_frames;  // sample_frames(num_frames=n, fps=None): used as given
    } else {
      const double fps = o.fps.value_or(defaults.fps);
      // int(total_num_frames / metadata.fps * fps), then min(max(n, min_frames), max_frames, total_num_frames).
      // A count at or past total_num_frames ends at the same result, so it is cut there before the conversion
      // (a tiny native fps can make it larger than any int64).
      const double wanted = static_cast<double>(range.count) / out.fps * fps;
      n = wanted < static_cast<double>(range.count) ? static_cast<int64_t>(wanted) : range.count;
      n = std::min({std::max(n, o.min_frames.value_or(defaults.min_frames)), o.max_frames.value_or(defaults.max_frames),
                    range.count});
    }
    for (double v : numpy_linspace(static_cast<double>(range.first), static_cast<double>(range.last), n))
      out.indices.push_back(static_cast<int64_t>(round_half_even(v)));
    return out;
  }

  // qwen-vl-utils: fetch_video -> calculate_video_frame_range -> smart_nframes -> torch.linspace(...).round()
  if (!has_fps) throw_error(what, ": qwen-vl-utils sampling needs the video's frame rate, which the file does not give");
  const FrameRange range = frame_range(total_frames, out.fps, o, what);
  out.total_frames = range.count;
  const double total = static_cast<double>(range.count);
  double n = 0;
  if (o.num_frames) {
    n = round_half_even(static_cast<double>(*o.num_frames) / 2.0) * 2.0;
  } else {
    const double fps = o.fps.value_or(defaults.fps);
    const double min_frames = static_cast<double>(ceil_to(static_cast<double>(o.min_frames.value_or(defaults.min_frames)), 2));
    const double max_frames = static_cast<double>(
        floor_to(static_cast<double>(o.max_frames.value_or(std::min(defaults.max_frames, range.count))), 2));
    n = total / out.fps * fps;
    n = std::min(std::min(std::max(n, min_frames), max_frames), total);
    n = static_cast<double>(floor_to(n, 2));
  }
  if (!(2 <= n && n <= total))
    throw_error(what, ": qwen-vl-utils needs between 2 and ", range.count, " frames, got ", n);
  for (float v : torch_linspace_f32(static_cast<double>(range.first), static_cast<double>(range.last),
                                    static_cast<int64_t>(n)))
    out.indices.push_back(static_cast<int64_t>(std::nearbyint(v)));  // torch.round: half to even (FE_TONEAREST)
  return out;
}

std::vector<double> frame_group_timestamps(std::vector<double> frame_times, int64_t temporal_patch_size) {
  if (frame_times.empty() || temporal_patch_size <= 0) return {};
  while (static_cast<int64_t>(frame_times.size()) % temporal_patch_size != 0) frame_times.push_back(frame_times.back());
  std::vector<double> out;
  for (size_t i = 0; i < frame_times.size(); i += static_cast<size_t>(temporal_patch_size))
    out.push_back((frame_times[i] + frame_times[i + static_cast<size_t>(temporal_patch_size) - 1]) / 2);
  return out;
}

std::string timestamp_text(double seconds) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "<%.1f seconds>", seconds);
  return buffer;
}

}  // namespace qwen3vl
