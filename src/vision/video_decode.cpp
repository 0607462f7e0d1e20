#include "vision/video_decode.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>

#include "core/error.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

namespace qwen3vl {
namespace {

std::string av_error_text(int code) {
  char buffer[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buffer, sizeof(buffer));
  return buffer;
}

}  // namespace

struct VideoReader::State {
  AVFormatContext* format = nullptr;
  AVCodecContext* codec = nullptr;
  SwsContext* sws = nullptr;
  AVPacket* packet = nullptr;
  AVFrame* frame = nullptr;
  AVStream* stream = nullptr;
  Image rgb;                      // the one full-resolution RGB buffer
  std::vector<uint8_t> staging;   // swscale's output rows when they need padding (see read_frames)
  int sws_width = 0, sws_height = 0, sws_format = -1, sws_colorspace = -1, sws_range = -1;
  int64_t last_pts = INT64_MIN;   // pts of the last frame out of the decoder; INT64_MIN before any
  bool draining = false;          // the demuxer hit EOF and the decoder was flushed with a null packet
  bool decoder_done = false;      // the decoder returned EOF
  std::chrono::steady_clock::time_point deadline;

  bool past_deadline() const { return std::chrono::steady_clock::now() > deadline; }
  // FFmpeg's interrupt callback (AVIOInterruptCB): a nonzero return ends blocking I/O with AVERROR_EXIT.
  static int interrupt(void* state) { return static_cast<const State*>(state)->past_deadline() ? 1 : 0; }

  ~State() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&packet);
    avcodec_free_context(&codec);
    avformat_close_input(&format);
  }
};

VideoReader::VideoReader(const std::string& path, VideoMetadataSource source, const VideoReaderLimits& limits)
    : state_(std::make_unique<State>()) {
  av_log_set_level(AV_LOG_QUIET);
  info_.path = path;
  struct stat file_stat;
  if (stat(path.c_str(), &file_stat) != 0) throw_error(path, ": cannot open video file (no such file)");
  if (S_ISDIR(file_stat.st_mode)) throw_error(path, ": is a directory, not a video file");
  if (file_stat.st_size == 0) throw_error(path, ": empty file (0 bytes), not a video");

  State& s = *state_;
  s.deadline = limits.deadline;
  s.format = avformat_alloc_context();
  if (!s.format) throw_error(path, ": out of memory");
  s.format->interrupt_callback = AVIOInterruptCB{State::interrupt, &s};
  AVDictionary* whitelists = nullptr;
  av_dict_set(&whitelists, "format_whitelist", limits.formats.c_str(), 0);
  av_dict_set(&whitelists, "protocol_whitelist", "file", 0);
  int rc = avformat_open_input(&s.format, path.c_str(), nullptr, &whitelists);  // frees s.format on failure
  av_dict_free(&whitelists);
  if (rc < 0) {
    check_deadline();
    // The probe's best guess (already freed with the context) is not worth naming; the whitelist is.
    throw_error(path, ": not a readable video file: corrupt, truncated, not a video, or not one of the containers "
                      "this build reads (", limits.formats, ")");
  }
  rc = avformat_find_stream_info(s.format, nullptr);
  check_deadline();
  if (rc < 0) throw_error(path, ": corrupt or truncated video file (", av_error_text(rc), ")");
  info_.container = s.format->iformat && s.format->iformat->name ? s.format->iformat->name : "";

  const AVCodec* decoder = nullptr;
  rc = av_find_best_stream(s.format, AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0);
  if (rc == AVERROR_STREAM_NOT_FOUND) throw_error(path, ": the file has no video stream");
  if (rc == AVERROR_DECODER_NOT_FOUND || !decoder) {
    int index = -1;
    for (unsigned i = 0; i < s.format->nb_streams; ++i)
      if (s.format->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) index = static_cast<int>(i);
    const char* name = index >= 0 ? avcodec_get_name(s.format->streams[index]->codecpar->codec_id) : "unknown";
    throw_error(path, ": no decoder for its video codec '", name, "' in this FFmpeg build");
  }
  if (rc < 0) throw_error(path, ": cannot select a video stream (", av_error_text(rc), ")");
  info_.stream_index = rc;
  s.stream = s.format->streams[rc];
  info_.codec = avcodec_get_name(s.stream->codecpar->codec_id);
  info_.width = s.stream->codecpar->width;
  info_.height = s.stream->codecpar->height;
  if (info_.width <= 0 || info_.height <= 0)
    throw_error(path, ": the video stream has no frame size (corrupt or truncated file)");
  if (int64_t{info_.width} * info_.height > kDecodeHardPixelLimit)
    throw_error(path, ": video frames of ", info_.width, "x", info_.height, " exceed the decoder's limit of ",
                kDecodeHardPixelLimit, " pixels");

  // Header values (PyAV's stream.frames / stream.average_rate; torchcodec's header fallbacks).
  const AVRational tb = s.stream->time_base;
  info_.header_frame_count = s.stream->nb_frames > 0 ? s.stream->nb_frames : 0;
  if (s.stream->avg_frame_rate.num > 0 && s.stream->avg_frame_rate.den > 0)
    info_.header_fps = av_q2d(s.stream->avg_frame_rate);
  std::optional<double> r_frame_rate;
  if (s.stream->r_frame_rate.num > 0 && s.stream->r_frame_rate.den > 0) r_frame_rate = av_q2d(s.stream->r_frame_rate);

  // Scan every packet (torchcodec scanFileAndUpdateMetadataAndIndex): count, min pts, max pts + duration, keyframes.
  s.packet = av_packet_alloc();
  s.frame = av_frame_alloc();
  if (!s.packet || !s.frame) throw_error(path, ": out of memory");
  std::vector<std::pair<int64_t, uint8_t>> frames;
  int64_t min_pts = INT64_MAX, max_end = INT64_MIN;
  for (;;) {
    rc = av_read_frame(s.format, s.packet);
    if (rc == AVERROR_EOF) break;
    check_deadline();
    if (rc < 0) throw_error(path, ": corrupt or truncated video data (", av_error_text(rc), ")");
    if (s.packet->stream_index == info_.stream_index && !(s.packet->flags & AV_PKT_FLAG_DISCARD)) {
      const int64_t pts = s.packet->pts != AV_NOPTS_VALUE ? s.packet->pts : s.packet->dts;
      if (pts == AV_NOPTS_VALUE) throw_error(path, ": a video packet has no timestamp (corrupt file)");
      int64_t end = 0;
      if (s.packet->duration < 0 || __builtin_add_overflow(pts, s.packet->duration, &end))
        throw_error(path, ": a video packet's timestamp or duration is out of range (corrupt file)");
      min_pts = std::min(min_pts, pts);
      max_end = std::max(max_end, end);
      frames.emplace_back(pts, (s.packet->flags & AV_PKT_FLAG_KEY) ? 1 : 0);
    }
    av_packet_unref(s.packet);
  }
  std::stable_sort(frames.begin(), frames.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& f : frames) {
    info_.frame_pts.push_back(f.first);
    info_.keyframe.push_back(f.second);
  }
  info_.scan_frame_count = static_cast<int64_t>(frames.size());
  if (frames.empty()) throw_error(path, ": the video stream holds no frames (zero-length video)");
  // torchcodec 0.17 (measured: 29.970029970029973 for 210 frames of 30000/1001) converts as pts * num / den, one
  // rounding; pts * av_q2d(tb) would round twice and differ in the last bit.
  const double begin = static_cast<double>(min_pts) * tb.num / tb.den;
  const double end = static_cast<double>(max_end) * tb.num / tb.den;
  // torchcodec average_fps: num_frames / (end - begin), else the header's r_frame_rate.
  if (end != begin) info_.scan_fps = static_cast<double>(info_.scan_frame_count) / (end - begin);
  else info_.scan_fps = r_frame_rate;

  // Data that ends before its header says: fewer packets than the header's frame count (MP4, AVI), or a span
  // well short of the stream's duration (its own, or Matroska's per-track DURATION tag).
  // (A frame or two of slack: index entries without data are not packets.)
  if (info_.header_frame_count > info_.scan_frame_count + 2 + info_.scan_frame_count / 50)
    throw_error(path, ": truncated video: the header lists ", info_.header_frame_count, " frames, the file holds ",
                info_.scan_frame_count);
  std::optional<double> expected;
  if (s.stream->duration > 0 && s.stream->duration != AV_NOPTS_VALUE) {
    expected = static_cast<double>(s.stream->duration) * tb.num / tb.den;
  } else if (const AVDictionaryEntry* tag = av_dict_get(s.stream->metadata, "DURATION", nullptr, 0)) {
    int hours = 0, minutes = 0;
    double seconds = 0;
    if (std::sscanf(tag->value, "%d:%d:%lf", &hours, &minutes, &seconds) == 3)
      expected = hours * 3600.0 + minutes * 60.0 + seconds;
  }
  if (expected && end - begin < *expected * 0.9 - 0.05)
    throw_error(path, ": truncated video: the header gives ", *expected, " s, the file holds ", end - begin,
                " s of frames");

  if (source == VideoMetadataSource::Scan) {
    info_.frame_count = info_.scan_frame_count;
    info_.fps = info_.scan_fps;
    info_.duration_seconds = end - begin;
  } else {
    if (info_.header_frame_count <= 0)
      throw_error(path, ": the container header gives no frame count (", info_.container,
                  "); use the packet scan (the default) for this file");
    info_.frame_count = info_.header_frame_count;
    info_.fps = info_.header_fps;
    info_.duration_seconds = s.stream->duration > 0 ? static_cast<double>(s.stream->duration) * av_q2d(tb) : 0.0;
  }

  // Only the chosen stream is demuxed from here on.
  for (unsigned i = 0; i < s.format->nb_streams; ++i)
    if (static_cast<int>(i) != info_.stream_index) s.format->streams[i]->discard = AVDISCARD_ALL;
  s.codec = avcodec_alloc_context3(decoder);
  if (!s.codec) throw_error(path, ": out of memory");
  rc = avcodec_parameters_to_context(s.codec, s.stream->codecpar);
  if (rc < 0) throw_error(path, ": bad codec parameters (", av_error_text(rc), ")");
  s.codec->pkt_timebase = tb;
  s.codec->thread_count = 1;  // frame order and output do not depend on it; the caller parallelizes elsewhere
  rc = avcodec_open2(s.codec, decoder, nullptr);
  if (rc < 0) throw_error(path, ": cannot open the ", info_.codec, " decoder (", av_error_text(rc), ")");
  rc = avformat_seek_file(s.format, info_.stream_index, INT64_MIN, info_.frame_pts.front(), info_.frame_pts.front(),
                          0);
  if (rc < 0) rc = av_seek_frame(s.format, info_.stream_index, info_.frame_pts.front(), AVSEEK_FLAG_BACKWARD);
  if (rc < 0) throw_error(path, ": cannot rewind the file after scanning it (", av_error_text(rc), ")");
}

VideoReader::~VideoReader() = default;

void VideoReader::check_deadline() const {
  if (state_->past_deadline()) throw_error(info_.path, ": reading the video took longer than its time limit");
}

void VideoReader::read_frames(const std::vector<int64_t>& indices, const VideoFrameSink& sink) {
  State& s = *state_;
  const std::string& path = info_.path;
  const int64_t count = info_.scan_frame_count;
  for (size_t k = 0; k < indices.size(); ++k) {
    if (indices[k] < 0 || indices[k] >= count)
      throw_error(path, ": frame ", indices[k], " requested, but the file holds ", count, " frames");
    if (k > 0 && indices[k] < indices[k - 1]) throw_error(path, ": frame indices must be non-decreasing");
  }

  // Next decoded frame, or false at the end of the stream.
  auto next_frame = [&]() -> bool {
    for (;;) {
      check_deadline();
      int rc = avcodec_receive_frame(s.codec, s.frame);
      if (rc == 0) {
        ++stats_.frames_decoded;
        s.last_pts = s.frame->pts != AV_NOPTS_VALUE ? s.frame->pts : s.frame->best_effort_timestamp;
        return true;
      }
      if (rc == AVERROR_EOF) {
        s.decoder_done = true;
        return false;
      }
      if (rc != AVERROR(EAGAIN)) throw_error(path, ": corrupt video data (", av_error_text(rc), ")");
      if (s.draining) return false;
      rc = av_read_frame(s.format, s.packet);
      if (rc == AVERROR_EOF) {
        s.draining = true;
        avcodec_send_packet(s.codec, nullptr);
        continue;
      }
      if (rc < 0) throw_error(path, ": corrupt or truncated video data (", av_error_text(rc), ")");
      ++stats_.packets_read;
      if (s.packet->stream_index == info_.stream_index) {
        rc = avcodec_send_packet(s.codec, s.packet);
        // Invalid data in one packet is concealed or dropped by the decoder, as in torchcodec and PyAV; a wanted
        // frame that never comes out is reported below.
        if (rc < 0 && rc != AVERROR_INVALIDDATA && rc != AVERROR(EAGAIN))
          throw_error(path, ": decoding failed (", av_error_text(rc), ")");
      }
      av_packet_unref(s.packet);
    }
  };

  auto seek_to = [&](int64_t pts) {
    const int rc = av_seek_frame(s.format, info_.stream_index, pts, AVSEEK_FLAG_BACKWARD);
    if (rc < 0) return false;
    avcodec_flush_buffers(s.codec);
    s.draining = s.decoder_done = false;
    s.last_pts = INT64_MIN;
    ++stats_.seeks;
    return true;
  };

  for (size_t k = 0; k < indices.size(); ++k) {
    const int64_t index = indices[k];
    if (k > 0 && index == indices[k - 1]) {  // the same frame again: still in the buffer
      sink(k, index, s.rgb);
      continue;
    }
    const int64_t target = info_.frame_pts[static_cast<size_t>(index)];
    // Seek when the closest keyframe at or before the target lies after the decoder's position (or the decoder is
    // already past the target, which only a repeated request could cause).
    int64_t key = index;
    while (key > 0 && !info_.keyframe[static_cast<size_t>(key)]) --key;
    const int64_t key_pts = info_.frame_pts[static_cast<size_t>(key)];
    if (s.last_pts >= target || (s.last_pts < key_pts && (s.last_pts != INT64_MIN || key > 0))) seek_to(key_pts);

    bool found = false;
    bool retried = false;
    while (!found) {
      if (!next_frame()) {
        if (!retried && seek_to(info_.frame_pts.front())) {  // a seek that went wrong: decode from the start
          retried = true;
          continue;
        }
        throw_error(path, ": frame ", index, " of ", count, " could not be decoded (truncated or corrupt file)");
      }
      if (s.last_pts < target) continue;
      if (s.last_pts > target) {
        if (!retried && stats_.seeks > 0 && seek_to(info_.frame_pts.front())) {
          retried = true;
          continue;
        }
        throw_error(path, ": frame ", index, " of ", count, " could not be decoded (truncated or corrupt file)");
      }
      found = true;
    }

    // Convert to RGB24 at the frame's own size (swscale, bilinear, the frame's colorspace and range).
    AVFrame* f = s.frame;
    if (f->width != info_.width || f->height != info_.height)
      throw_error(path, ": frame ", index, " is ", f->width, "x", f->height, " but the stream is ", info_.width, "x",
                  info_.height, " (size changes inside a video are not supported)");
    const int colorspace = f->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : static_cast<int>(f->colorspace);
    const int range = f->color_range == AVCOL_RANGE_JPEG ? 1 : 0;
    if (!s.sws || s.sws_width != f->width || s.sws_height != f->height || s.sws_format != f->format ||
        s.sws_colorspace != colorspace || s.sws_range != range) {
      sws_freeContext(s.sws);
      s.sws = sws_getContext(f->width, f->height, static_cast<AVPixelFormat>(f->format), f->width, f->height,
                             AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr);
      if (!s.sws) throw_error(path, ": cannot convert its ", av_get_pix_fmt_name(static_cast<AVPixelFormat>(f->format)),
                              " frames to RGB");
      const int* coefficients = sws_getCoefficients(colorspace);
      sws_setColorspaceDetails(s.sws, coefficients, range, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
      s.sws_width = f->width;
      s.sws_height = f->height;
      s.sws_format = f->format;
      s.sws_colorspace = colorspace;
      s.sws_range = range;
    }
    const size_t bytes = static_cast<size_t>(f->width) * static_cast<size_t>(f->height) * 3;
    if (s.rgb.rgb.size() != bytes) {
      s.rgb.rgb.assign(bytes, 0);  // one buffer for the whole video (its size never changes, checked above)
      s.rgb.rgb.shrink_to_fit();
      ++stats_.rgb_buffers_allocated;
    }
    s.rgb.width = f->width;
    s.rgb.height = f->height;
    // swscale's SIMD YUV->RGB writes whole blocks of pixels: with a row stride that is not a multiple of 64 bytes
    // (widths like 100) the block past the right edge lands on the next row's first pixels. Such rows are
    // converted into a padded staging buffer (as torchcodec's aligned frames are) and copied out.
    const int row_bytes = f->width * 3;
    const bool padded = row_bytes % 64 != 0;
    const int stride = padded ? (row_bytes + 64 + 63) / 64 * 64 : row_bytes;
    if (padded && s.staging.size() != static_cast<size_t>(stride) * (f->height + 1)) {
      s.staging.assign(static_cast<size_t>(stride) * (f->height + 1), 0);
      s.staging.shrink_to_fit();
    }
    uint8_t* dst[4] = {padded ? s.staging.data() : s.rgb.rgb.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {stride, 0, 0, 0};
    if (sws_scale(s.sws, f->data, f->linesize, 0, f->height, dst, dst_stride) != f->height)
      throw_error(path, ": RGB conversion of frame ", index, " failed");
    if (padded)
      for (int y = 0; y < f->height; ++y)
        std::copy_n(s.staging.data() + static_cast<size_t>(y) * stride, row_bytes,
                    s.rgb.rgb.data() + static_cast<size_t>(y) * row_bytes);
    ++stats_.frames_converted;
    av_frame_unref(f);
    sink(k, index, s.rgb);
  }
}

}  // namespace qwen3vl
