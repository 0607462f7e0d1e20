#include "video_input.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "api_error.h"
#include "core/error.h"

namespace qwen3vl {
namespace server {

namespace {

std::string write_temp_file(const std::string& bytes) {
  const char* dir = std::getenv("TMPDIR");
  std::string pattern = std::string(dir && *dir ? dir : "/tmp") + "/qwen3vl-video-XXXXXX";
  const int fd = mkstemp(pattern.data());
  if (fd < 0) throw std::runtime_error("cannot create a temporary file for a video");
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + written, bytes.size() - written);
    if (n <= 0) {
      close(fd);
      unlink(pattern.c_str());
      throw std::runtime_error("cannot write a temporary file for a video");
    }
    written += static_cast<size_t>(n);
  }
  close(fd);
  return pattern;
}

// Error messages name the temporary file; clients know the part instead.
std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

}  // namespace

VideoJob::~VideoJob() {
  reader.reset();
  if (!path.empty()) unlink(path.c_str());
}

VideoInputs::VideoInputs(const LoadedModel& model, const ServerOptions& options, const MediaSource& media)
    : options_(options), media_(media), config_(load_video_processor_config(model.dir)) {}

void VideoInputs::fail(const VideoJob& job, const std::string& message, const std::string& code) const {
  const std::string& where = job.part->where;
  std::string text = replace_all(message, job.path, where);
  if (text.rfind(where, 0) != 0) text = where + ": " + text;
  throw ApiError(400, text, where, code);
}

void VideoInputs::fail_decoding(const VideoJob& job, const Error& error, const MediaBudget& budget) const {
  budget.check_deadline(job.part->where);
  fail(job, error.what(), "invalid_video");
}

std::unique_ptr<VideoJob> VideoInputs::open(const MediaPart& part, MediaBudget& budget) const {
  auto job = std::make_unique<VideoJob>();
  job->part = &part;
  VideoOptions& o = job->options;
  o.sampling.fps = part.fps;
  o.sampling.num_frames = part.num_frames;
  o.sampling.min_frames = part.min_frames;
  o.sampling.max_frames = part.max_frames;
  o.sampling.start_seconds = part.start_seconds;
  o.sampling.end_seconds = part.end_seconds;
  o.min_pixels = part.min_pixels;
  o.max_pixels = part.max_pixels;
  o.total_pixels = part.total_pixels;
  // The processor's max_frames (768 for Qwen3-VL) bounds the frames one video may ask for: transformers' own
  // sample_frames clamps fps sampling to it, but a request could raise it (max_frames, min_frames) or bypass it
  // (nframes is used as given). Larger values are refused rather than silently clamped, naming the field.
  const int64_t frame_limit = config_.sampling.max_frames;
  for (const auto& [field, value] : {std::pair{"nframes", part.num_frames}, std::pair{"min_frames", part.min_frames},
                                     std::pair{"max_frames", part.max_frames}})
    if (value && *value > frame_limit)
      throw ApiError(400, part.where + "." + field + ": " + std::to_string(*value) +
                              " frames is over this model's limit of " + std::to_string(frame_limit) +
                              " frames per video (video_preprocessor_config.json max_frames)",
                     part.where + "." + field, "invalid_video");
  try {
    if (part.frames.empty()) {
      job->path = write_temp_file(media_.load(part.url, part.where, options_.max_body_bytes, budget));
      VideoReaderLimits limits;
      limits.deadline = budget.deadline;
      job->reader = std::make_unique<VideoReader>(job->path, VideoMetadataSource::Scan, limits);
      const double seconds = job->reader->info().duration_seconds;
      if (seconds > options_.max_video_seconds)
        fail(*job, "the video is " + std::to_string(static_cast<int64_t>(seconds)) + " s long; this server takes at most " +
                       std::to_string(static_cast<int64_t>(options_.max_video_seconds)) + " s",
             "video_too_long");
    } else {
      if (static_cast<int64_t>(part.frames.size()) > config_.sampling.max_frames)
        fail(*job, std::to_string(part.frames.size()) + " frames; at most " +
                       std::to_string(config_.sampling.max_frames) + " per video",
             "invalid_video");
      size_t stamped = 0;
      for (const MediaPart::Frame& frame : part.frames) {
        job->frames.push_back(media_.load(frame.url, part.where, options_.max_body_bytes, budget));
        if (frame.timestamp) {
          ++stamped;
          job->frame_times.push_back(*frame.timestamp);
        }
      }
      if (stamped != 0 && stamped != part.frames.size())
        fail(*job, "give every frame a timestamp, or none", "invalid_video");
      const std::string& first = job->frames.front();
      job->first_frame = decode_image_bytes(reinterpret_cast<const uint8_t*>(first.data()), first.size(),
                                            part.where + ".frames[0]", options_.max_image_pixels);
    }
    job->planned = plan(*job, job->options);
  } catch (const ApiError&) {
    throw;
  } catch (const Error& error) {
    fail_decoding(*job, error, budget);
  }
  return job;
}

ProcessedVideo VideoInputs::plan(const VideoJob& job, const VideoOptions& options) const {
  try {
    if (job.reader) {
      ProcessedVideo planned = plan_video(job.reader->info(), config_, options);
      planned.source = job.part->where;
      return planned;
    }
    const int64_t n = static_cast<int64_t>(job.frames.size());
    const auto size = video_target_size(n, job.first_frame.height, job.first_frame.width, config_, options);
    ProcessedVideo planned;
    const int64_t P = config_.patch_size, Tp = config_.temporal_patch_size;
    planned.grid = GridTHW{(n + Tp - 1) / Tp, size.first / P, size.second / P};
    planned.source = job.part->where;
    planned.original_width = job.first_frame.width;
    planned.original_height = job.first_frame.height;
    planned.resized_height = size.first;
    planned.resized_width = size.second;
    planned.total_frames = n;
    // As preprocess_frame_list: explicit times, else index / fps (24 when none is given).
    planned.fps = job.frame_times.empty() ? job.part->fps.value_or(24.0) : 1.0;
    planned.fps_was_missing = job.frame_times.empty() && !job.part->fps;
    for (int64_t i = 0; i < n; ++i) {
      planned.frame_indices.push_back(i);
      planned.frame_times.push_back(job.frame_times.empty() ? static_cast<double>(i) / planned.fps
                                                            : job.frame_times[static_cast<size_t>(i)]);
    }
    return planned;
  } catch (const Error& error) {
    fail(job, error.what(), "invalid_video");
  }
}

void VideoInputs::process(VideoJob& job, const MediaBudget& budget) const {
  ProcessedVideo& planned = job.planned;
  const std::string& where = job.part->where;
  try {
    VideoPatchifier patchifier(static_cast<int64_t>(planned.frame_indices.size()), planned.resized_height,
                               planned.resized_width, config_);
    if (job.reader) {
      // (The reader checks the deadline itself while it demuxes and decodes.)
      job.reader->read_frames(planned.frame_indices, [&](size_t, int64_t, const Image& frame) { patchifier.push(frame); });
    } else {
      patchifier.push(job.first_frame);
      job.first_frame = Image{};
      for (size_t i = 1; i < job.frames.size(); ++i) {
        budget.check_deadline(where);
        const std::string frame_where = where + ".frames[" + std::to_string(i) + "]";
        const Image frame = decode_image_bytes(reinterpret_cast<const uint8_t*>(job.frames[i].data()),
                                               job.frames[i].size(), frame_where, options_.max_image_pixels);
        if (frame.width != planned.original_width || frame.height != planned.original_height)
          throw_error(frame_where, ": frames must share one size: this one is ", frame.width, "x", frame.height,
                      ", the first ", planned.original_width, "x", planned.original_height);
        patchifier.push(frame);
        job.frames[i] = {};
      }
    }
    planned.pixel_values = patchifier.finish().pixel_values;
  } catch (const Error& error) {
    fail_decoding(job, error, budget);
  }
  job.reader.reset();
}

}  // namespace server
}  // namespace qwen3vl
