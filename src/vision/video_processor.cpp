#include "vision/video_processor.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "vision/resize.h"

namespace qwen3vl {
namespace {

using nlohmann::json;

int64_t json_positive(const json& value, const std::string& path, const std::string& key) {
  if (value.is_number_integer() || value.is_number_unsigned()) {
    if (value.get<int64_t>() > 0) return value.get<int64_t>();
  } else if (value.is_number_float()) {
    const double v = value.get<double>();
    if (v > 0 && v == std::floor(v) && v < 9.0e15) return static_cast<int64_t>(v);
  }
  throw_error(path, ": \"", key, "\" must be a positive integer, got ", value.dump());
}

void json_triple(const json& value, const std::string& path, const std::string& key, float out[3]) {
  if (value.is_number()) {
    out[0] = out[1] = out[2] = value.get<float>();
    return;
  }
  if (!value.is_array() || value.size() != 3) throw_error(path, ": \"", key, "\" must be a list of 3 numbers");
  for (int c = 0; c < 3; ++c) {
    if (!value[c].is_number()) throw_error(path, ": \"", key, "\" must be a list of 3 numbers");
    out[c] = static_cast<float>(value[c].get<double>());
  }
}

void apply_config(const json& root, const std::string& path, VideoProcessorConfig& c) {
  if (!root.is_object()) throw_error(path, ": expected a JSON object");
  auto has = [&](const char* key) { return root.contains(key) && !root[key].is_null(); };
  if (has("size")) {
    const json& size = root["size"];
    if (!size.is_object()) throw_error(path, ": \"size\" must be an object");
    if (size.contains("shortest_edge")) c.min_pixels = json_positive(size["shortest_edge"], path, "size.shortest_edge");
    if (size.contains("longest_edge")) c.max_pixels = json_positive(size["longest_edge"], path, "size.longest_edge");
  }
  if (has("patch_size")) c.patch_size = json_positive(root["patch_size"], path, "patch_size");
  if (has("temporal_patch_size")) c.temporal_patch_size = json_positive(root["temporal_patch_size"], path, "temporal_patch_size");
  if (has("merge_size")) c.merge_size = json_positive(root["merge_size"], path, "merge_size");
  if (has("image_mean")) json_triple(root["image_mean"], path, "image_mean", c.image_mean);
  if (has("image_std")) json_triple(root["image_std"], path, "image_std", c.image_std);
  for (float s : c.image_std)
    if (s == 0.0f) throw_error(path, ": \"image_std\" has a zero entry");
  if (has("rescale_factor")) {
    if (!root["rescale_factor"].is_number() || root["rescale_factor"].get<double>() <= 0)
      throw_error(path, ": \"rescale_factor\" must be a positive number");
    c.rescale_factor = root["rescale_factor"].get<double>();
  }
  for (const char* key : {"do_resize", "do_rescale", "do_normalize", "cap_pixels_per_frame"}) {
    if (!has(key)) continue;
    if (!root[key].is_boolean()) throw_error(path, ": \"", key, "\" must be true or false");
    const bool v = root[key].get<bool>();
    if (!std::strcmp(key, "do_resize")) c.do_resize = v;
    if (!std::strcmp(key, "do_rescale")) c.do_rescale = v;
    if (!std::strcmp(key, "do_normalize")) c.do_normalize = v;
    if (!std::strcmp(key, "cap_pixels_per_frame")) c.cap_pixels_per_frame = v;
  }
  if (has("fps")) {
    if (!root["fps"].is_number() || !(root["fps"].get<double>() > 0)) throw_error(path, ": \"fps\" must be > 0");
    c.sampling.fps = root["fps"].get<double>();
  }
  if (has("min_frames")) c.sampling.min_frames = json_positive(root["min_frames"], path, "min_frames");
  if (has("max_frames")) c.sampling.max_frames = json_positive(root["max_frames"], path, "max_frames");
  if (has("max_video_tokens")) c.max_video_tokens = json_positive(root["max_video_tokens"], path, "max_video_tokens");
  if (has("resample") && (!root["resample"].is_number_integer() || root["resample"].get<int>() != 3))
    throw_error(path, ": only \"resample\": 3 (bicubic) is supported, got ", root["resample"].dump());
}

bool read_json(const std::string& path, json& out) {
  std::ifstream in(path);
  if (!in) return false;
  try {
    out = json::parse(in);
  } catch (const json::exception& error) {
    throw_error(path, ": invalid JSON (", error.what(), ")");
  }
  return true;
}

// qwen-vl-utils smart_resize with a fractional max_pixels (its video budget is total_pixels / nframes * 2).
std::pair<int64_t, int64_t> smart_resize_qwen_vl_utils_video(int64_t height, int64_t width, int64_t factor,
                                                             double min_pixels, double max_pixels) {
  if (max_pixels < min_pixels) throw_error("video smart_resize: max_pixels must be >= min_pixels");
  const double ratio = static_cast<double>(std::max(height, width)) / static_cast<double>(std::min(height, width));
  if (ratio > 200) throw_error("video is ", width, "x", height, ": absolute aspect ratio must be smaller than 200");
  const double f = static_cast<double>(factor);
  int64_t h_bar = std::max(factor, static_cast<int64_t>(round_half_even(height / f)) * factor);
  int64_t w_bar = std::max(factor, static_cast<int64_t>(round_half_even(width / f)) * factor);
  if (static_cast<double>(h_bar * w_bar) > max_pixels) {
    const double beta = std::sqrt(static_cast<double>(height * width) / max_pixels);
    h_bar = static_cast<int64_t>(std::floor(height / beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::floor(width / beta / f)) * factor;
  } else if (static_cast<double>(h_bar * w_bar) < min_pixels) {
    const double beta = std::sqrt(min_pixels / static_cast<double>(height * width));
    h_bar = static_cast<int64_t>(std::ceil(height * beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(width * beta / f)) * factor;
  }
  return {h_bar, w_bar};
}

}  // namespace

VideoProcessorConfig load_video_processor_config(const std::string& dir) {
  VideoProcessorConfig config;
  json root;
  const std::string processor = dir + "/processor_config.json";
  if (read_json(processor, root) && root.is_object() && root.contains("video_processor")) {
    apply_config(root["video_processor"], processor + " video_processor", config);
    return config;
  }
  for (const char* name : {"video_preprocessor_config.json", "preprocessor_config.json"}) {
    const std::string path = dir + "/" + name;
    if (read_json(path, root)) {
      apply_config(root, path, config);
      return config;
    }
  }
  return config;
}

std::pair<int64_t, int64_t> smart_resize_video(int64_t num_frames, int64_t height, int64_t width,
                                               int64_t temporal_factor, int64_t factor, int64_t min_pixels,
                                               int64_t max_pixels) {
  if (num_frames < temporal_factor)
    throw_error("video smart_resize: ", num_frames, " frames, fewer than the temporal patch size ", temporal_factor);
  if (height <= 0 || width <= 0) throw_error("video smart_resize: invalid frame size ", width, "x", height);
  if (height < factor || width < factor) {  // scaled up first, truncated to int (latest transformers)
    const double scale = std::max(static_cast<double>(factor) / height, static_cast<double>(factor) / width);
    height = static_cast<int64_t>(height * scale);
    width = static_cast<int64_t>(width * scale);
  }
  const double ratio = static_cast<double>(std::max(height, width)) / static_cast<double>(std::min(height, width));
  if (ratio > 200) throw_error("video frames are ", width, "x", height, ": absolute aspect ratio must be smaller than 200");
  const double f = static_cast<double>(factor);
  int64_t h_bar = static_cast<int64_t>(round_half_even(height / f)) * factor;
  int64_t w_bar = static_cast<int64_t>(round_half_even(width / f)) * factor;
  const int64_t t_bar =
      static_cast<int64_t>(round_half_even(static_cast<double>(num_frames) / temporal_factor)) * temporal_factor;
  if (t_bar * h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt(static_cast<double>(num_frames * height * width) / static_cast<double>(max_pixels));
    h_bar = std::max(factor, static_cast<int64_t>(std::floor(height / beta / f)) * factor);
    w_bar = std::max(factor, static_cast<int64_t>(std::floor(width / beta / f)) * factor);
  } else if (t_bar * h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / static_cast<double>(num_frames * height * width));
    h_bar = static_cast<int64_t>(std::ceil(height * beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(width * beta / f)) * factor;
  }
  return {h_bar, w_bar};
}

namespace {

// qwen-vl-utils (vision_process.py) reads MODEL_SEQ_LEN = int(float(os.environ.get('MODEL_SEQ_LEN', 128000))) for
// its default total video budget; the same variable is honoured here for that rule. Python refuses text that is no
// number, inf and nan (ValueError / OverflowError); so does this, naming the variable. The value is truncated as
// int() does, in double: no integer conversion that a huge value could overflow.
double model_seq_len() {
  const char* env = std::getenv("MODEL_SEQ_LEN");
  if (!env) return 128000;
  char* end = nullptr;
  const double value = std::strtod(env, &end);
  while (end && std::isspace(static_cast<unsigned char>(*end))) ++end;
  if (end == env || !end || *end != '\0' || !std::isfinite(value))
    throw_error("MODEL_SEQ_LEN: \"", env, "\" is not a finite number (the qwen-vl-utils video budget in tokens)");
  return std::trunc(value);
}

}  // namespace

std::pair<int64_t, int64_t> video_target_size(int64_t num_frames, int64_t height, int64_t width,
                                              const VideoProcessorConfig& config, const VideoOptions& options) {
  const int64_t factor = config.patch_size * config.merge_size;
  if (options.sampling.rule == FrameSamplingRule::QwenVlUtils) {
    // fetch_video: per-frame budget from the total over all frames, floored at 1.05 x min_pixels.
    const double seq_len = model_seq_len();
    const double min_pixels = static_cast<double>(options.min_pixels.value_or(128 * factor * factor));
    const double total = options.total_pixels ? static_cast<double>(*options.total_pixels)
                                              : seq_len * static_cast<double>(factor * factor) * 0.9;
    double max_pixels = std::max(std::min(static_cast<double>(768 * factor * factor), total / num_frames * 2),
                                 std::floor(min_pixels * 1.05));
    if (options.max_pixels) max_pixels = std::min(static_cast<double>(*options.max_pixels), max_pixels);
    return smart_resize_qwen_vl_utils_video(height, width, factor, min_pixels, max_pixels);
  }
  const int64_t min_pixels = options.min_pixels.value_or(config.min_pixels);
  int64_t max_pixels = options.total_pixels.value_or(config.max_pixels);
  const bool cap = options.cap_pixels_per_frame.value_or(options.max_pixels.has_value() || config.cap_pixels_per_frame);
  if (cap) {  // Qwen3VLVideoProcessor.resize with cap_pixels_per_frame=True
    const int64_t frame_cap = options.max_pixels.value_or(config.max_video_tokens * factor * factor);
    const int64_t per_frame = std::max(std::min(frame_cap, max_pixels / num_frames),
                                       static_cast<int64_t>(static_cast<double>(min_pixels) * 1.05));
    max_pixels = per_frame * num_frames;
  }
  return smart_resize_video(num_frames, height, width, config.temporal_patch_size, factor, min_pixels, max_pixels);
}

VideoPatchifier::VideoPatchifier(int64_t num_frames, int64_t resized_height, int64_t resized_width,
                                 const VideoProcessorConfig& config)
    : num_frames_(num_frames), height_(resized_height), width_(resized_width), config_(config) {
  const int64_t P = config.patch_size, M = config.merge_size, Tp = config.temporal_patch_size;
  if (P <= 0 || M <= 0 || Tp <= 0) throw_error("video processor: patch_size, merge_size, temporal_patch_size must be > 0");
  if (num_frames <= 0) throw_error("video processor: no frames");
  if (height_ % (P * M) != 0 || width_ % (P * M) != 0 || height_ <= 0 || width_ <= 0)
    throw_error("video processor: ", width_, "x", height_, " frames do not tile into ", P * M, "-pixel merged patches");
  // Same fused rescale + normalize as the image processor (float32 mean*255, std*255, then (x - mean) / std).
  const float inverse_rescale = static_cast<float>(1.0 / config.rescale_factor);
  for (int c = 0; c < 3; ++c) {
    float mean = config.image_mean[c], std_dev = config.image_std[c];
    if (config.do_rescale && config.do_normalize) {
      mean = mean * inverse_rescale;
      std_dev = std_dev * inverse_rescale;
    }
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(v);
      lut_[c][v] = config.do_normalize ? (x - mean) / std_dev
                                       : (config.do_rescale ? x * static_cast<float>(config.rescale_factor) : x);
    }
  }
  const int64_t padded = (num_frames + Tp - 1) / Tp * Tp;
  out_.grid = GridTHW{padded / Tp, height_ / P, width_ / P};
  out_.resized_height = height_;
  out_.resized_width = width_;
  out_.pixel_values.assign(static_cast<size_t>(out_.grid.patches() * 3 * Tp * P * P), 0.0f);
}

void VideoPatchifier::write_frame(const Image& resized, int64_t slot) {
  const int64_t P = config_.patch_size, M = config_.merge_size, Tp = config_.temporal_patch_size;
  const int64_t gh = height_ / P, gw = width_ / P, t = slot / Tp, tt = slot % Tp;
  const int64_t row_size = 3 * Tp * P * P;
  int64_t row = t * gh * gw;
  for (int64_t bh = 0; bh < gh / M; ++bh)
    for (int64_t bw = 0; bw < gw / M; ++bw)
      for (int64_t ih = 0; ih < M; ++ih)
        for (int64_t iw = 0; iw < M; ++iw, ++row) {
          const int64_t py = bh * M + ih, px = bw * M + iw;
          float* dst = &out_.pixel_values[static_cast<size_t>(row * row_size + tt * P * P)];
          for (int64_t dy = 0; dy < P; ++dy) {
            const uint8_t* src = &resized.rgb[static_cast<size_t>(((py * P + dy) * width_ + px * P) * 3)];
            for (int64_t dx = 0; dx < P; ++dx)
              for (int c = 0; c < 3; ++c) dst[c * Tp * P * P + dy * P + dx] = lut_[c][src[dx * 3 + c]];
          }
        }
}

void VideoPatchifier::push(const Image& frame) {
  if (pushed_ >= num_frames_) throw_error("video processor: more frames than announced (", num_frames_, ")");
  if (frame.width <= 0 || frame.height <= 0 ||
      frame.rgb.size() != static_cast<size_t>(frame.width) * static_cast<size_t>(frame.height) * 3)
    throw_error("video processor: invalid frame ", frame.width, "x", frame.height);
  if (frame.width == width_ && frame.height == height_) {
    last_ = frame;  // tvF.resize returns an equal-size input unchanged
  } else {
    last_ = resize_bicubic_antialias(frame, static_cast<int>(width_), static_cast<int>(height_));
  }
  write_frame(last_, pushed_++);
}

ProcessedVideo VideoPatchifier::finish() {
  if (pushed_ != num_frames_) throw_error("video processor: ", pushed_, " frames given, ", num_frames_, " expected");
  const int64_t Tp = config_.temporal_patch_size;
  for (int64_t slot = pushed_; slot % Tp != 0; ++slot) write_frame(last_, slot);  // patchify's repeat of the last
  last_ = Image{};
  return std::move(out_);
}

namespace {

ProcessedVideo finish_video(VideoPatchifier& patchifier, int64_t width, int64_t height,
                            const std::vector<int64_t>& indices, std::vector<double> times, double fps,
                            bool fps_missing, int64_t total_frames, const std::string& source) {
  ProcessedVideo out = patchifier.finish();
  out.source = source;
  out.original_width = width;
  out.original_height = height;
  out.frame_indices = indices;
  out.frame_times = std::move(times);
  out.fps = fps;
  out.fps_was_missing = fps_missing;
  out.total_frames = total_frames;
  return out;
}

std::vector<double> index_times(const std::vector<int64_t>& indices, double fps) {
  std::vector<double> times;
  for (int64_t index : indices) times.push_back(static_cast<double>(index) / fps);  // idx / metadata.fps
  return times;
}

}  // namespace

ProcessedVideo plan_video(const VideoInfo& info, const VideoProcessorConfig& config, const VideoOptions& options) {
  const SampledFrames sampled = sample_frames(info.frame_count, info.fps, options.sampling, config.sampling, info.path);
  const int64_t n = static_cast<int64_t>(sampled.indices.size());
  std::pair<int64_t, int64_t> size;
  try {
    size = video_target_size(n, info.height, info.width, config, options);
  } catch (const Error& error) {
    throw_error(info.path, ": ", error.what());
  }
  const int64_t P = config.patch_size, Tp = config.temporal_patch_size;
  ProcessedVideo out;
  out.grid = GridTHW{(n + Tp - 1) / Tp, size.first / P, size.second / P};
  out.source = info.path;
  out.original_width = info.width;
  out.original_height = info.height;
  out.resized_height = size.first;
  out.resized_width = size.second;
  out.total_frames = sampled.total_frames;
  out.fps = sampled.fps;
  out.fps_was_missing = sampled.fps_was_missing;
  out.frame_indices = sampled.indices;
  out.frame_times = index_times(sampled.indices, sampled.fps);
  return out;
}

ProcessedVideo preprocess_video_file(const std::string& path, const VideoProcessorConfig& config,
                                     const VideoOptions& options) {
  if (!config.do_resize) throw_error(path, ": video processor configs with do_resize=false are not supported");
  VideoReader reader(path, options.metadata);
  ProcessedVideo plan = plan_video(reader.info(), config, options);
  VideoPatchifier patchifier(static_cast<int64_t>(plan.frame_indices.size()), plan.resized_height,
                             plan.resized_width, config);
  reader.read_frames(plan.frame_indices, [&](size_t, int64_t, const Image& frame) { patchifier.push(frame); });
  ProcessedVideo done = patchifier.finish();
  plan.pixel_values = std::move(done.pixel_values);
  return plan;
}

ProcessedVideo preprocess_video_frames(const std::vector<Image>& frames, const std::vector<int64_t>& indices,
                                       double fps, const VideoProcessorConfig& config, const VideoOptions& options) {
  if (frames.empty()) throw_error("video processor: no frames");
  if (indices.size() != frames.size()) throw_error("video processor: ", frames.size(), " frames but ", indices.size(), " indices");
  for (const Image& frame : frames)
    if (frame.width != frames[0].width || frame.height != frames[0].height)
      throw_error("video processor: frames differ in size (", frame.width, "x", frame.height, " and ", frames[0].width,
                  "x", frames[0].height, ")");
  const int64_t n = static_cast<int64_t>(frames.size());
  const auto size = video_target_size(n, frames[0].height, frames[0].width, config, options);
  VideoPatchifier patchifier(n, size.first, size.second, config);
  for (const Image& frame : frames) patchifier.push(frame);
  return finish_video(patchifier, frames[0].width, frames[0].height, indices, index_times(indices, fps), fps, false, n,
                      "frames");
}

ProcessedVideo preprocess_frame_list(const std::vector<std::string>& image_paths, const std::vector<double>& times,
                                     std::optional<double> fps, const VideoProcessorConfig& config,
                                     const VideoOptions& options) {
  if (image_paths.empty()) throw_error("frame list: no images");
  if (!times.empty() && times.size() != image_paths.size())
    throw_error("frame list: ", image_paths.size(), " images but ", times.size(), " timestamps");
  if (fps && !(*fps > 0)) throw_error("frame list: fps must be > 0");
  const int64_t n = static_cast<int64_t>(image_paths.size());
  // The first image fixes the size; the others are decoded one at a time.
  Image first = decode_image_file(image_paths[0]);
  std::pair<int64_t, int64_t> size;
  try {
    size = video_target_size(n, first.height, first.width, config, options);
  } catch (const Error& error) {
    throw_error(image_paths[0], ": ", error.what());
  }
  VideoPatchifier patchifier(n, size.first, size.second, config);
  const int width = first.width, height = first.height;
  patchifier.push(first);
  first = Image{};
  for (int64_t i = 1; i < n; ++i) {
    const Image frame = decode_image_file(image_paths[static_cast<size_t>(i)]);
    if (frame.width != width || frame.height != height)
      throw_error(image_paths[static_cast<size_t>(i)], ": frame list images must share one size: this one is ",
                  frame.width, "x", frame.height, ", the first ", width, "x", height);
    patchifier.push(frame);
  }
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < n; ++i) indices.push_back(i);
  const double used_fps = times.empty() ? fps.value_or(24.0) : 1.0;
  std::vector<double> frame_times = times.empty() ? index_times(indices, used_fps) : times;
  return finish_video(patchifier, width, height, indices, std::move(frame_times), used_fps,
                      times.empty() && !fps, n, "frame list");
}

}  // namespace qwen3vl
