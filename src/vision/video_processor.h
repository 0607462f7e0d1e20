// The Qwen3-VL video processor: transformers 5.x `Qwen3VLVideoProcessor` (+ the metadata that Qwen3VLProcessor turns
// into `<t.t seconds>` stamps), reproduced on decoded frames:
//   sample frame indices (video_sampling.h) -> decode only those (video_decode.h) -> smart_resize over ALL frames
//   (the size budget is T*h*w, as in video_processing_qwen3_vl.py smart_resize) -> the same uint8 antialiased
//   bicubic as images (resize.h) -> fused rescale + normalize -> patchify with the last frame repeated when T is
//   odd -> grid (T/2, h/16, w/16).
// qwen-vl-utils' fetch_video is an option (FrameSamplingRule::QwenVlUtils): its frame count, index rounding and
// per-frame pixel budget; its frames are resized with the same torchvision kernel it uses, so they match too.
//
// Memory: frames are decoded, converted, resized and patchified one at a time; besides the decoder's reference
// frames, at most one full-resolution RGB frame, one resized frame pair and the output pixel_values exist
// (pixel_values is T*h*w*3*4 bytes, bounded by the pixel budget, not by the input's length or resolution).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vision/grid_thw.h"
#include "vision/image_decode.h"
#include "vision/image_processor.h"
#include "vision/video_decode.h"
#include "vision/video_sampling.h"

namespace qwen3vl {

struct VideoProcessorConfig {  // video_preprocessor_config.json (Qwen3VLVideoProcessor)
  int64_t min_pixels = 128 * 32 * 32;   // size.shortest_edge (class default; released configs: 4096)
  int64_t max_pixels = 768 * 32 * 32;   // size.longest_edge: the budget over ALL frames (released: 25165824)
  int64_t patch_size = 16, temporal_patch_size = 2, merge_size = 2;
  float image_mean[3] = {0.5f, 0.5f, 0.5f}, image_std[3] = {0.5f, 0.5f, 0.5f};
  double rescale_factor = 1.0 / 255.0;
  bool do_resize = true, do_rescale = true, do_normalize = true;
  FrameSamplingDefaults sampling;       // fps 2, min_frames 4, max_frames 768
  bool cap_pixels_per_frame = false;    // 5.23 default (unset -> False with a warning)
  int64_t max_video_tokens = 768;       // the per-frame cap, in merged tokens, when capping
};

// DIR's video processor config as transformers' AutoVideoProcessor finds it: processor_config.json's
// "video_processor" entry, else video_preprocessor_config.json, else preprocessor_config.json (whose "size" then
// is the video budget too), else the class defaults above. Errors name the file and key.
VideoProcessorConfig load_video_processor_config(const std::string& dir);

// Per-video options; unset fields take the config's values.
struct VideoOptions {
  FrameSamplingOptions sampling;
  VideoMetadataSource metadata = VideoMetadataSource::Scan;
  std::optional<int64_t> min_pixels;    // transformers: size.shortest_edge; qwen-vl-utils: per-frame minimum
  std::optional<int64_t> total_pixels;  // transformers: size.longest_edge (T*h*w); qwen-vl-utils: total_pixels
  std::optional<int64_t> max_pixels;    // per frame. transformers: turns cap_pixels_per_frame on with this cap
                                        // (max_video_tokens * factor^2 := max_pixels); qwen-vl-utils: max_pixels
  std::optional<bool> cap_pixels_per_frame;
};

struct ProcessedVideo {
  GridTHW grid;                      // video_grid_thw
  std::string source;                // file name (or "frame list")
  int64_t original_width = 0, original_height = 0, resized_width = 0, resized_height = 0;
  int64_t total_frames = 0;          // frames in the video (or in its start/end range)
  double fps = 24.0;                 // metadata fps the stamps use (native; 24 when the file has none)
  bool fps_was_missing = false;
  std::vector<int64_t> frame_indices;  // sampled frames (metadata.frames_indices), before odd-count padding
  std::vector<double> frame_times;     // their times in seconds (index / fps, or a frame list's explicit times)
  // [grid.t*grid.h*grid.w, 3*Tp*P*P] float32 in the processor's patch order (as ProcessedImage::pixel_values).
  std::vector<float> pixel_values;

  // One stamp per temporal patch: the mean time of its first and last frame (Qwen3VLProcessor).
  std::vector<double> group_timestamps(int64_t temporal_patch_size = 2) const {
    return frame_group_timestamps(frame_times, temporal_patch_size);
  }
};

// smart_resize of transformers models/qwen3_vl/video_processing_qwen3_vl.py: {height, width}. Frames smaller than
// `factor` are scaled up first.
std::pair<int64_t, int64_t> smart_resize_video(int64_t num_frames, int64_t height, int64_t width,
                                               int64_t temporal_factor, int64_t factor, int64_t min_pixels,
                                               int64_t max_pixels);

// The resized frame size for T sampled frames of h x w under `config` and `options` (either rule).
std::pair<int64_t, int64_t> video_target_size(int64_t num_frames, int64_t height, int64_t width,
                                              const VideoProcessorConfig& config, const VideoOptions& options);

// Everything about a video but its pixels: sampled frames and times, the resized size and grid. pixel_values stays
// empty. Cheap (no decoding), so prompts can be sized and checked before any frame is decoded.
ProcessedVideo plan_video(const VideoInfo& info, const VideoProcessorConfig& config, const VideoOptions& options = {});

// Decodes, samples and preprocesses a video file. Throws Error naming the file.
ProcessedVideo preprocess_video_file(const std::string& path, const VideoProcessorConfig& config,
                                     const VideoOptions& options = {});

// Already decoded frames (e.g. the reference decoder's, or a frame list): `frames` are the sampled frames, all the
// same size, with their indices and the metadata fps (timestamps index / fps).
ProcessedVideo preprocess_video_frames(const std::vector<Image>& frames, const std::vector<int64_t>& indices,
                                       double fps, const VideoProcessorConfig& config, const VideoOptions& options = {});

// A list of image files as one video: every image is one frame (no sampling), with explicit times in seconds, or
// index / fps when `times` is empty (fps empty: 24, transformers' fallback). All images must have the same size.
ProcessedVideo preprocess_frame_list(const std::vector<std::string>& image_paths, const std::vector<double>& times,
                                     std::optional<double> fps, const VideoProcessorConfig& config,
                                     const VideoOptions& options = {});

// Streams frames into pixel_values: push T frames (any size; each is resized to the target), then finish().
class VideoPatchifier {
 public:
  VideoPatchifier(int64_t num_frames, int64_t resized_height, int64_t resized_width, const VideoProcessorConfig& config);
  void push(const Image& frame);  // resizes (if needed) and writes the frame's patches
  ProcessedVideo finish();        // pads an odd frame count with the last frame; returns grid + pixel_values

 private:
  void write_frame(const Image& resized, int64_t slot);
  int64_t num_frames_, height_, width_, pushed_ = 0;
  const VideoProcessorConfig& config_;
  float lut_[3][256];
  Image last_;  // the last resized frame (repeated when the count is odd)
  ProcessedVideo out_;
};

}  // namespace qwen3vl
