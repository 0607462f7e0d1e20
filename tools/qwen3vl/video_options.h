// Video flags of `qwen3vl run`: video files and frame lists, sampling (fps, frame counts, time range), pixel
// budgets, the sampling rule and metadata source. Flags set every video's defaults; a video may override them
// after "::", e.g. --video clip.mp4::fps=1,max-frames=16 or --video-frames a.png,b.png::times=0/0.4/1.1.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/loaded_model.h"
#include "engine/video_prompt.h"
#include "vision/video_processor.h"

namespace qwen3vl {
namespace cli {

struct VideoCliOptions {
  std::vector<std::string> paths;        // --video PATH[::key=value,...]
  std::vector<std::string> frame_lists;  // --video-frames A.png,B.png,...[::times=T0/T1/...,fps=F]
  std::optional<double> fps, start_seconds, end_seconds;
  std::optional<int64_t> num_frames, min_frames, max_frames, min_pixels, max_pixels, total_pixels;
  bool cap_pixels_per_frame = false;
  std::string sampling = "transformers";  // or "qwen-vl-utils"
  std::string metadata = "scan";          // or "header" (PyAV's)
  std::string prompt_style = "transformers5";  // or "transformers4"
  // --image / --video / --video-frames in command-line order (the order of the media in the user turn).
  std::vector<ContentPart::Type> media_order;
};

void add_video_options(CLI::App* command, VideoCliOptions& options);

// Decodes and preprocesses every video in order, printing per video to stderr the frames sampled, their times,
// the frame-pair stamps and the visual tokens. Errors name the file.
std::vector<ProcessedVideo> load_videos(const VideoCliOptions& options, const LoadedModel& model);

VideoPlaceholderStyle placeholder_style(const VideoCliOptions& options);

}  // namespace cli
}  // namespace qwen3vl
