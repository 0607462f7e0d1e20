// Which frames of a video the model sees, and when they were shown: the frame-index arithmetic of transformers 5.x's
// Qwen3VLVideoProcessor.sample_frames (the default) and of qwen-vl-utils 0.0.14's fetch_video (an option), and the
// `<t.t seconds>` stamps of Qwen3VLProcessor. Pure arithmetic on the stream's frame count and native fps, so it is
// tested without decoding anything; vision/video_decode.h reads those two numbers from a file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qwen3vl {

enum class FrameSamplingRule {
  Transformers,  // Qwen3VLVideoProcessor.sample_frames: n = int(N / fps_native * fps), clamped, numpy linspace
  QwenVlUtils,   // qwen-vl-utils smart_nframes: n floored to an even count, float32 torch.linspace
};

// Per video; unset fields take the processor config's values (fps 2, min 4, max 768 frames for Qwen3-VL).
struct FrameSamplingOptions {
  FrameSamplingRule rule = FrameSamplingRule::Transformers;
  std::optional<double> fps;           // frames per second to sample
  std::optional<int64_t> num_frames;   // exact count instead of fps (transformers: used as is, no clamping;
                                       // qwen-vl-utils: rounded to an even count, its `nframes`)
  std::optional<int64_t> min_frames, max_frames;
  // Restrict sampling to [start, end] seconds of the video, as qwen-vl-utils' video_start / video_end do
  // (first frame ceil(start * fps_native), last min(floor(end * fps_native), N - 1); indices stay absolute).
  // transformers has no such option; with the Transformers rule the same range is applied before its sampling.
  std::optional<double> start_seconds, end_seconds;
};

struct FrameSamplingDefaults {  // the processor config's values
  double fps = 2.0;
  int64_t min_frames = 4, max_frames = 768;
};

struct SampledFrames {
  std::vector<int64_t> indices;  // frame indices in presentation order, as transformers' metadata.frames_indices
  double fps = 24.0;             // native fps the stamps divide by (24 when the stream has none, as transformers)
  bool fps_was_missing = false;  // the 24 fallback was used
  int64_t total_frames = 0;      // frames in the sampled range (the whole stream without start/end)
};

// `native_fps` empty or <= 0 means the container gave none. Throws Error (naming `what`, e.g. the file) when the
// video has no frame or the options are inconsistent.
SampledFrames sample_frames(int64_t total_frames, std::optional<double> native_fps, const FrameSamplingOptions& options,
                            const FrameSamplingDefaults& defaults, const std::string& what);

// numpy.linspace(start, stop, n) in float64 (start + i * step, last element = stop).
std::vector<double> numpy_linspace(double start, double stop, int64_t n);
// torch.linspace(start, stop, n) in float32 (two-sided: the second half counts back from stop).
std::vector<float> torch_linspace_f32(double start, double stop, int64_t n);
// Python's round() / numpy's round: half to even.
double round_half_even(double x);

// Qwen3VLProcessor._calculate_timestamps: frame_times padded to a multiple of `temporal_patch_size` by repeating the
// last, then each group's first and last time averaged: (t[2j] + t[2j+1]) / 2 for the released models.
std::vector<double> frame_group_timestamps(std::vector<double> frame_times, int64_t temporal_patch_size);
// f"<{seconds:.1f} seconds>" (Python's correctly rounded .1f; glibc printf rounds the same way).
std::string timestamp_text(double seconds);

}  // namespace qwen3vl
