// Video parts of a chat request, on the engine's video pipeline (vision/video_processor.h, FFmpeg): a video file
// sent as a data: URL / base64 (or a local file, or a fetched URL) is written to a private temporary file, scanned
// and sampled like transformers' Qwen3VLVideoProcessor; a list of frames (images, each with an optional timestamp
// in seconds) becomes one video without sampling, as preprocess_frame_list does for files. Planning (sampled
// frames, resized size, tokens) decodes nothing, so the request's visual-token budget is settled before decoding.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "chat_request.h"
#include "core/error.h"
#include "engine/loaded_model.h"
#include "media_source.h"
#include "server_options.h"
#include "vision/video_decode.h"
#include "vision/video_processor.h"

namespace qwen3vl {
namespace server {

struct VideoJob {
  VideoJob() = default;
  ~VideoJob();  // removes the temporary file
  VideoJob(const VideoJob&) = delete;
  VideoJob& operator=(const VideoJob&) = delete;

  const MediaPart* part = nullptr;
  std::string path;                      // temporary copy of a video file
  std::unique_ptr<VideoReader> reader;   // opened and scanned
  std::vector<std::string> frames;       // a frame list: each frame's encoded bytes
  std::vector<double> frame_times;       // its explicit times (empty: index / fps)
  Image first_frame;                     // a frame list's first frame, decoded (it fixes the size)
  VideoOptions options;                  // sampling and pixel budget
  ProcessedVideo planned;                // grid, sizes, frames and times; pixel_values once processed
};

class VideoInputs {
 public:
  VideoInputs(const LoadedModel& model, const ServerOptions& options, const MediaSource& media);

  // Loads, scans and plans one video part at the request's budget. Throws ApiError 400 naming the part (or the
  // field: frame counts over the processor's max_frames are refused), "media_timeout" past budget.deadline.
  std::unique_ptr<VideoJob> open(const MediaPart& part, MediaBudget& budget) const;
  // The plan for `options` (cheap; throws ApiError for a size the processor refuses).
  ProcessedVideo plan(const VideoJob& job, const VideoOptions& options) const;
  // Decodes the planned frames into job.planned.pixel_values, checking budget.deadline between frames.
  void process(VideoJob& job, const MediaBudget& budget) const;
  int64_t tokens(const ProcessedVideo& video) const { return video.grid.merged_tokens(config_.merge_size); }
  const VideoProcessorConfig& config() const { return config_; }

 private:
  [[noreturn]] void fail(const VideoJob& job, const std::string& message, const std::string& code) const;
  // An Error from decoding: "media_timeout" once the deadline has passed (whatever the decoder said), else
  // "invalid_video".
  [[noreturn]] void fail_decoding(const VideoJob& job, const Error& error, const MediaBudget& budget) const;

  const ServerOptions& options_;
  const MediaSource& media_;
  VideoProcessorConfig config_;
};

}  // namespace server
}  // namespace qwen3vl
