// Video files through FFmpeg's libraries (libavformat/libavcodec/libswscale, Debian's FFmpeg 5.1): MP4, MKV, WebM,
// AVI, MOV and animated GIF, with whatever codec the build decodes.
//
// Metadata as transformers sees it. Qwen3VLProcessor given a path decodes with torchcodec in "exact" seek mode
// (video_utils.read_video_torchcodec; qwen-vl-utils prefers the same reader): a scan of every packet of the best
// video stream gives the frame count (packets) and the average fps = count / (max(pts + duration) - min(pts)) in
// seconds, falling back to the header's r_frame_rate when the scan has no duration. PyAV (`backend="pyav"`) reads
// the header instead: nb_frames and avg_frame_rate, which differ from the scan on variable-frame-rate files and
// are absent (0) in Matroska/WebM. Both are available here; the scan is the default.
//
// Frames: frame k of the metadata is the k-th frame in presentation (pts) order, as torchcodec indexes them.
// read_frames decodes only up to the last wanted frame, seeks to the nearest keyframe before a wanted frame when that
// skips decoding, converts each wanted frame to RGB24 with swscale (bilinear, the frame's colorspace and range,
// as PyAV's to_ndarray("rgb24") and torchcodec do) into ONE reused buffer, and hands it to the caller, which must
// consume it (resize, patchify) before returning. So at most one full-resolution RGB frame exists at a time, besides
// the decoder's own reference frames.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vision/image_decode.h"

namespace qwen3vl {

enum class VideoMetadataSource {
  Scan,    // torchcodec exact mode (transformers' default decoder): packet scan
  Header,  // PyAV: stream nb_frames and avg_frame_rate from the container header
};

struct VideoInfo {
  std::string path;
  std::string container;      // e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  std::string codec;          // e.g. "h264"
  int stream_index = -1;      // the best video stream (av_find_best_stream)
  int width = 0, height = 0;  // coded frame size
  int64_t frame_count = 0;    // by the chosen metadata source
  std::optional<double> fps;  // by the chosen metadata source; empty when unknown (transformers then uses 24)
  double duration_seconds = 0.0;  // scan: max(pts + duration) - min(pts); header: stream duration
  // Scan results (always computed: they drive seeking): frame pts in presentation order, and keyframe flags.
  std::vector<int64_t> frame_pts;
  std::vector<uint8_t> keyframe;
  int64_t scan_frame_count = 0;
  std::optional<double> scan_fps, header_fps;
  int64_t header_frame_count = 0;  // 0 when the header has none
};

struct VideoDecodeStats {
  int64_t packets_read = 0;
  int64_t frames_decoded = 0;    // frames that came out of the decoder
  int64_t frames_converted = 0;  // frames converted to RGB (the wanted ones)
  int64_t seeks = 0;
  int64_t rgb_buffers_allocated = 0;  // full-resolution RGB buffers: 1 for a fixed-size stream
};

// What a VideoReader may open, and until when. FFmpeg runs in-process on untrusted bytes, so it is opened with
// a format whitelist (the demuxers of the containers above: FFmpeg's probe would otherwise pick any of its
// demuxers, including playlist ones such as hls and concat that open further files) and the protocol whitelist
// "file" (no nested network or pipe protocols).
struct VideoReaderLimits {
  std::string formats = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,gif";  // demuxer names (format_whitelist)
  // Past this instant, reading (opening, scanning, decoding) stops with an Error that says so.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

// Receives the k-th wanted frame (k counts the request's indices) as RGB8. `frame` is valid only during the call
// and is overwritten by the next one.
using VideoFrameSink = std::function<void(size_t k, int64_t frame_index, const Image& frame)>;

class VideoReader {
 public:
  // Opens the file and scans its packets. Throws Error naming the file for a missing, empty, corrupt or truncated
  // file, a container outside limits.formats, a file without a video stream, a codec the build cannot decode, a
  // stream without frames, and reading past limits.deadline.
  explicit VideoReader(const std::string& path, VideoMetadataSource source = VideoMetadataSource::Scan,
                       const VideoReaderLimits& limits = {});
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const VideoInfo& info() const { return info_; }

  // Decodes the frames at `indices` (non-decreasing; a repeated index is delivered again) and passes each to `sink`
  // in order. Throws Error naming the file when a frame cannot be decoded or is missing (truncated data).
  void read_frames(const std::vector<int64_t>& indices, const VideoFrameSink& sink);

  const VideoDecodeStats& stats() const { return stats_; }

 private:
  void check_deadline() const;  // throws Error once limits.deadline has passed

  struct State;
  std::unique_ptr<State> state_;
  VideoInfo info_;
  VideoDecodeStats stats_;
};

}  // namespace qwen3vl
