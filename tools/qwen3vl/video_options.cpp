#include "video_options.h"

#include <cstdio>
#include <sstream>

#include "core/error.h"

namespace qwen3vl {
namespace cli {
namespace {

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string piece;
  while (std::getline(in, piece, separator)) out.push_back(piece);
  return out;
}

double to_double(const std::string& value, const std::string& what) {
  try {
    size_t used = 0;
    const double v = std::stod(value, &used);
    if (used == value.size()) return v;
  } catch (const std::exception&) {
  }
  throw_error(what, ": '", value, "' is not a number");
}

int64_t to_int(const std::string& value, const std::string& what) {
  try {
    size_t used = 0;
    const long long v = std::stoll(value, &used);
    if (used == value.size()) return v;
  } catch (const std::exception&) {
  }
  throw_error(what, ": '", value, "' is not an integer");
}

struct VideoSpec {
  std::string target;  // the path, or the comma-separated frame files
  VideoOptions options;
  std::vector<double> times;
  std::optional<double> list_fps;
};

// "PATH::k=v,k=v" -> the path and the options (flags first, then the per-video overrides).
VideoSpec parse_spec(const std::string& arg, const VideoCliOptions& o, bool frame_list) {
  VideoSpec spec;
  const size_t cut = arg.rfind("::");
  spec.target = arg.substr(0, cut);
  VideoOptions& v = spec.options;
  v.sampling.rule = o.sampling == "qwen-vl-utils" ? FrameSamplingRule::QwenVlUtils : FrameSamplingRule::Transformers;
  v.metadata = o.metadata == "header" ? VideoMetadataSource::Header : VideoMetadataSource::Scan;
  v.sampling.fps = o.fps;
  v.sampling.num_frames = o.num_frames;
  v.sampling.min_frames = o.min_frames;
  v.sampling.max_frames = o.max_frames;
  v.sampling.start_seconds = o.start_seconds;
  v.sampling.end_seconds = o.end_seconds;
  v.min_pixels = o.min_pixels;
  v.max_pixels = o.max_pixels;
  v.total_pixels = o.total_pixels;
  if (o.cap_pixels_per_frame) v.cap_pixels_per_frame = true;
  if (frame_list) spec.list_fps = o.fps;
  if (cut == std::string::npos) return spec;
  for (const std::string& item : split(arg.substr(cut + 2), ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) throw_error(arg, ": expected key=value after '::', got '", item, "'");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1), what = spec.target + " " + key;
    if (key == "fps") {
      v.sampling.fps = to_double(value, what);
      spec.list_fps = v.sampling.fps;
    } else if (key == "num-frames" || key == "nframes") {
      v.sampling.num_frames = to_int(value, what);
    } else if (key == "min-frames") {
      v.sampling.min_frames = to_int(value, what);
    } else if (key == "max-frames") {
      v.sampling.max_frames = to_int(value, what);
    } else if (key == "start") {
      v.sampling.start_seconds = to_double(value, what);
    } else if (key == "end") {
      v.sampling.end_seconds = to_double(value, what);
    } else if (key == "min-pixels") {
      v.min_pixels = to_int(value, what);
    } else if (key == "max-pixels") {
      v.max_pixels = to_int(value, what);
    } else if (key == "total-pixels") {
      v.total_pixels = to_int(value, what);
    } else if (key == "times" && frame_list) {
      for (const std::string& t : split(value, '/')) spec.times.push_back(to_double(t, what));
    } else {
      throw_error(arg, ": unknown video option '", key, "' (fps, num-frames, min-frames, max-frames, start, end, ",
                  "min-pixels, max-pixels, total-pixels", frame_list ? ", times" : "", ")");
    }
  }
  return spec;
}

std::string list_values(const std::vector<double>& values, const char* format) {
  std::string out;
  char buffer[32];
  for (size_t i = 0; i < values.size(); ++i) {
    if (values.size() > 24 && i == 12) {
      out += " ...";
      i = values.size() - 12;
    }
    std::snprintf(buffer, sizeof(buffer), format, values[i]);
    out += (out.empty() ? "" : " ") + std::string(buffer);
  }
  return out;
}

void print_video(size_t number, const std::string& name, const ProcessedVideo& v, int64_t merge) {
  std::vector<double> indices(v.frame_indices.begin(), v.frame_indices.end());
  std::string stamps;
  for (double t : v.group_timestamps()) stamps += (stamps.empty() ? "" : " ") + timestamp_text(t);
  std::fprintf(stderr,
               "video %zu: %s %lldx%lld, %lld frames at %.6g fps -> %zu frames sampled [%s] at [%s] s, resized "
               "%lldx%lld, grid %lldx%lldx%lld, %lld visual tokens (%lld per frame pair)\n  stamps: %s\n",
               number, name.c_str(), static_cast<long long>(v.original_width),
               static_cast<long long>(v.original_height), static_cast<long long>(v.total_frames), v.fps,
               v.frame_indices.size(), list_values(indices, "%.0f").c_str(), list_values(v.frame_times, "%.2f").c_str(),
               static_cast<long long>(v.resized_width), static_cast<long long>(v.resized_height),
               static_cast<long long>(v.grid.t), static_cast<long long>(v.grid.h), static_cast<long long>(v.grid.w),
               static_cast<long long>(v.grid.merged_tokens(merge)),
               static_cast<long long>((v.grid.h / merge) * (v.grid.w / merge)), stamps.c_str());
  if (v.fps_was_missing)
    std::fprintf(stderr, "  warning: %s gives no frame rate; times assume 24 fps, as transformers does\n", name.c_str());
}

}  // namespace

void add_video_options(CLI::App* command, VideoCliOptions& o) {
  command->add_option("--video", o.paths,
                      "Video file (MP4, MKV, WebM, AVI, MOV, GIF, ...); repeatable, in prompt order with --image. "
                      "Per-video overrides after '::', e.g. clip.mp4::fps=1,max-frames=16");
  command->add_option("--video-frames", o.frame_lists,
                      "Image files as one video: A.png,B.png,...; times in seconds after '::times=0/0.5/1.2', else "
                      "index / fps (--fps, or 24 as transformers)");
  command->add_option("--fps", o.fps, "Frames per second to sample (default: the video processor config, 2)");
  command->add_option("--num-frames", o.num_frames, "Sample exactly this many frames instead of --fps");
  command->add_option("--min-frames", o.min_frames, "Minimum frames sampled (default 4)");
  command->add_option("--max-frames", o.max_frames, "Maximum frames sampled (default 768)");
  command->add_option("--video-start", o.start_seconds, "Sample from this time (seconds)");
  command->add_option("--video-end", o.end_seconds, "Sample up to this time (seconds)");
  command->add_option("--video-min-pixels", o.min_pixels, "Video minimum pixels (transformers: over all frames)");
  command->add_option("--video-max-pixels", o.max_pixels, "Video maximum pixels per frame (turns the per-frame cap on)");
  command->add_option("--video-total-pixels", o.total_pixels,
                      "Pixel budget over all frames (default: video_preprocessor_config.json size.longest_edge)");
  command->add_flag("--cap-pixels-per-frame", o.cap_pixels_per_frame,
                    "transformers' cap_pixels_per_frame=True (qwen-vl-utils-like per-frame cost)");
  command->add_option("--video-sampling", o.sampling, "'transformers' (default) or 'qwen-vl-utils'")
      ->check(CLI::IsMember({"transformers", "qwen-vl-utils"}));
  command->add_option("--video-metadata", o.metadata,
                      "Frame count and fps: 'scan' (torchcodec, transformers' default) or 'header' (PyAV)")
      ->check(CLI::IsMember({"scan", "header"}));
  command->add_option("--video-prompt", o.prompt_style,
                      "'transformers5' (5.x: the template's vision_start/end kept around the stamps) or "
                      "'transformers4' (4.57: replaced)")
      ->check(CLI::IsMember({"transformers5", "transformers4"}));
  command->parse_complete_callback([command, &o]() {
    o.media_order.clear();
    for (CLI::Option* option : command->parse_order()) {
      if (option->check_lname("image")) o.media_order.push_back(ContentPart::Type::Image);
      if (option->check_lname("video") || option->check_lname("video-frames"))
        o.media_order.push_back(ContentPart::Type::Video);
    }
  });
}

std::vector<ProcessedVideo> load_videos(const VideoCliOptions& o, const LoadedModel& model) {
  const VideoProcessorConfig config = load_video_processor_config(model.dir);
  const int64_t merge = config.merge_size;
  std::vector<ProcessedVideo> videos;
  // CLI11 keeps each option's values in order but not the order across --video and --video-frames: files come
  // first, then frame lists (media_order counts both as videos, so the prompt gets them in that order).
  for (const std::string& arg : o.paths) {
    const VideoSpec spec = parse_spec(arg, o, false);
    videos.push_back(preprocess_video_file(spec.target, config, spec.options));
    print_video(videos.size(), spec.target, videos.back(), merge);
  }
  for (const std::string& arg : o.frame_lists) {
    const VideoSpec spec = parse_spec(arg, o, true);
    const std::vector<std::string> files = split(spec.target, ',');
    videos.push_back(preprocess_frame_list(files, spec.times, spec.list_fps, config, spec.options));
    print_video(videos.size(), "frame list (" + std::to_string(files.size()) + " images)", videos.back(), merge);
  }
  return videos;
}

VideoPlaceholderStyle placeholder_style(const VideoCliOptions& o) {
  return o.prompt_style == "transformers4" ? VideoPlaceholderStyle::Transformers4 : VideoPlaceholderStyle::Transformers5;
}

}  // namespace cli
}  // namespace qwen3vl
