#include "vision/image_processor.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "vision/resize.h"

namespace qwen3vl {
namespace {

// Python's round() on a float: round half to even, independent of the FPU rounding mode.
double round_half_even(double x) {
  const double floor_x = std::floor(x);
  const double diff = x - floor_x;
  if (diff > 0.5) return floor_x + 1.0;
  if (diff < 0.5) return floor_x;
  return std::fmod(floor_x, 2.0) == 0.0 ? floor_x : floor_x + 1.0;
}

void check_aspect_ratio(int64_t height, int64_t width) {
  if (height <= 0 || width <= 0) throw_error("smart_resize: invalid image size ", width, "x", height);
  // Python: max(h, w) / min(h, w) is a correctly rounded double quotient, as is this.
  const double ratio = static_cast<double>(std::max(height, width)) / static_cast<double>(std::min(height, width));
  if (ratio > 200)
    throw_error("image is ", width, "x", height, ": absolute aspect ratio must be smaller than 200, got ", ratio);
}

int64_t json_integer(const nlohmann::json& value, const std::string& path, const std::string& key) {
  if (value.is_number_integer() || value.is_number_unsigned()) {
    const int64_t v = value.get<int64_t>();
    if (v > 0) return v;
  } else if (value.is_number_float()) {
    const double v = value.get<double>();
    if (v > 0 && v == std::floor(v) && v < 9.0e15) return static_cast<int64_t>(v);
  }
  throw_error(path, ": \"", key, "\" must be a positive integer, got ", value.dump());
}

void json_triple(const nlohmann::json& value, const std::string& path, const std::string& key, float out[3]) {
  if (value.is_number()) {
    out[0] = out[1] = out[2] = value.get<float>();
    return;
  }
  if (!value.is_array() || value.size() != 3 || !value[0].is_number() || !value[1].is_number() || !value[2].is_number())
    throw_error(path, ": \"", key, "\" must be a list of 3 numbers, got ", value.dump());
  // torch.tensor(list of Python floats) rounds each double to float32, as this does.
  for (int c = 0; c < 3; ++c) out[c] = static_cast<float>(value[c].get<double>());
}

bool json_bool(const nlohmann::json& value, const std::string& path, const std::string& key) {
  if (!value.is_boolean()) throw_error(path, ": \"", key, "\" must be true or false, got ", value.dump());
  return value.get<bool>();
}

}  // namespace

ImageProcessorConfig load_image_processor_config(const std::string& path) {
  ImageProcessorConfig config;
  std::ifstream in(path);
  if (!in) return config;  // no preprocessor_config.json: the released Qwen3-VL values
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& error) {
    throw_error(path, ": invalid JSON (", error.what(), ")");
  }
  if (!root.is_object()) throw_error(path, ": expected a JSON object");

  if (root.contains("size") && !root["size"].is_null()) {
    const nlohmann::json& size = root["size"];
    if (!size.is_object()) throw_error(path, ": \"size\" must be an object");
    for (const char* key : {"shortest_edge", "min_pixels"})
      if (size.contains(key)) config.min_pixels = json_integer(size[key], path, std::string("size.") + key);
    for (const char* key : {"longest_edge", "max_pixels"})
      if (size.contains(key)) config.max_pixels = json_integer(size[key], path, std::string("size.") + key);
  }
  // Qwen2VLImageProcessor.__init__: top-level min_pixels / max_pixels replace size's entries.
  if (root.contains("min_pixels") && !root["min_pixels"].is_null())
    config.min_pixels = json_integer(root["min_pixels"], path, "min_pixels");
  if (root.contains("max_pixels") && !root["max_pixels"].is_null())
    config.max_pixels = json_integer(root["max_pixels"], path, "max_pixels");

  if (root.contains("patch_size")) config.patch_size = json_integer(root["patch_size"], path, "patch_size");
  if (root.contains("temporal_patch_size"))
    config.temporal_patch_size = json_integer(root["temporal_patch_size"], path, "temporal_patch_size");
  if (root.contains("merge_size")) config.merge_size = json_integer(root["merge_size"], path, "merge_size");
  if (root.contains("image_mean")) json_triple(root["image_mean"], path, "image_mean", config.image_mean);
  if (root.contains("image_std")) json_triple(root["image_std"], path, "image_std", config.image_std);
  for (int c = 0; c < 3; ++c)
    if (config.image_std[c] == 0.0f) throw_error(path, ": \"image_std\" has a zero entry");
  if (root.contains("rescale_factor")) {
    if (!root["rescale_factor"].is_number() || root["rescale_factor"].get<double>() <= 0)
      throw_error(path, ": \"rescale_factor\" must be a positive number");
    config.rescale_factor = root["rescale_factor"].get<double>();
  }
  if (root.contains("do_resize")) config.do_resize = json_bool(root["do_resize"], path, "do_resize");
  if (root.contains("do_rescale")) config.do_rescale = json_bool(root["do_rescale"], path, "do_rescale");
  if (root.contains("do_normalize")) config.do_normalize = json_bool(root["do_normalize"], path, "do_normalize");
  if (root.contains("resample") && !root["resample"].is_null()) {
    if (!root["resample"].is_number_integer() || root["resample"].get<int>() != 3)
      throw_error(path, ": only \"resample\": 3 (bicubic) is supported, got ", root["resample"].dump());
  }
  return config;
}

std::pair<int64_t, int64_t> smart_resize(int64_t height, int64_t width, int64_t factor, int64_t min_pixels,
                                         int64_t max_pixels) {
  check_aspect_ratio(height, width);
  const double f = static_cast<double>(factor);
  int64_t h_bar = static_cast<int64_t>(round_half_even(static_cast<double>(height) / f)) * factor;
  int64_t w_bar = static_cast<int64_t>(round_half_even(static_cast<double>(width) / f)) * factor;
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt(static_cast<double>(height * width) / static_cast<double>(max_pixels));
    h_bar = std::max(factor, static_cast<int64_t>(std::floor(static_cast<double>(height) / beta / f)) * factor);
    w_bar = std::max(factor, static_cast<int64_t>(std::floor(static_cast<double>(width) / beta / f)) * factor);
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / static_cast<double>(height * width));
    h_bar = static_cast<int64_t>(std::ceil(static_cast<double>(height) * beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(static_cast<double>(width) * beta / f)) * factor;
  }
  return {h_bar, w_bar};
}

std::pair<int64_t, int64_t> smart_resize_qwen_vl_utils(int64_t height, int64_t width, int64_t factor,
                                                       int64_t min_pixels, int64_t max_pixels) {
  if (max_pixels < min_pixels)
    throw_error("smart_resize: max_pixels (", max_pixels, ") must be >= min_pixels (", min_pixels, ")");
  check_aspect_ratio(height, width);
  const double f = static_cast<double>(factor);
  int64_t h_bar = std::max(factor, static_cast<int64_t>(round_half_even(static_cast<double>(height) / f)) * factor);
  int64_t w_bar = std::max(factor, static_cast<int64_t>(round_half_even(static_cast<double>(width) / f)) * factor);
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt(static_cast<double>(height * width) / static_cast<double>(max_pixels));
    h_bar = static_cast<int64_t>(std::floor(static_cast<double>(height) / beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::floor(static_cast<double>(width) / beta / f)) * factor;
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / static_cast<double>(height * width));
    h_bar = static_cast<int64_t>(std::ceil(static_cast<double>(height) * beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(static_cast<double>(width) * beta / f)) * factor;
  }
  return {h_bar, w_bar};
}

ProcessedImage patchify_image(const Image& resized, const ImageProcessorConfig& config) {
  const int64_t P = config.patch_size, M = config.merge_size, T = config.temporal_patch_size;
  const int64_t H = resized.height, W = resized.width;
  if (P <= 0 || M <= 0 || T <= 0)
    throw_error("image processor: patch_size, merge_size, temporal_patch_size must be > 0");
  if (H % (P * M) != 0 || W % (P * M) != 0)
    throw_error("image processor: a ", W, "x", H, " image does not tile into ", P * M, "-pixel merged patches",
                " (do_resize is off, so the image must already be a multiple of patch_size*merge_size)");

  // One float per (channel, uint8 value): the exact float32 result of transformers' fused rescale+normalize, so
  // the per-pixel work is a lookup. HF: mean*(1/rescale_factor) and std*(1/rescale_factor) as float32 tensors
  // (the Python double scalar is applied as float), then normalize = (x.float() - mean) / std.
  float lut[3][256];
  const float inverse_rescale = static_cast<float>(1.0 / config.rescale_factor);
  for (int c = 0; c < 3; ++c) {
    float mean = config.image_mean[c], std_dev = config.image_std[c];
    if (config.do_rescale && config.do_normalize) {
      mean = mean * inverse_rescale;
      std_dev = std_dev * inverse_rescale;
    }
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(v);
      if (config.do_normalize)
        lut[c][v] = (x - mean) / std_dev;
      else if (config.do_rescale)
        lut[c][v] = x * static_cast<float>(config.rescale_factor);
      else
        lut[c][v] = x;
    }
  }

  ProcessedImage out;
  out.grid = GridTHW{1, H / P, W / P};
  out.resized_width = W;
  out.resized_height = H;
  const int64_t row_size = 3 * T * P * P;
  const int64_t rows = out.grid.patches();
  out.pixel_values.resize(static_cast<size_t>(rows * row_size));
  // Row order (Qwen2VLImageProcessor._preprocess's permute): merged row bh, merged col bw, then ih, iw inside the
  // MxM group. Each row holds [c][t][dy][dx]; the image is one frame repeated T times, so the t blocks are copies.
  const int64_t gh = H / P, gw = W / P;
  int64_t row = 0;
  for (int64_t bh = 0; bh < gh / M; ++bh) {
    for (int64_t bw = 0; bw < gw / M; ++bw) {
      for (int64_t ih = 0; ih < M; ++ih) {
        for (int64_t iw = 0; iw < M; ++iw, ++row) {
          const int64_t py = bh * M + ih, px = bw * M + iw;
          float* dst = &out.pixel_values[static_cast<size_t>(row * row_size)];
          for (int64_t dy = 0; dy < P; ++dy) {
            const uint8_t* src = &resized.rgb[static_cast<size_t>(((py * P + dy) * W + px * P) * 3)];
            for (int64_t dx = 0; dx < P; ++dx)
              for (int c = 0; c < 3; ++c) dst[c * T * P * P + dy * P + dx] = lut[c][src[dx * 3 + c]];
          }
          for (int c = 0; c < 3; ++c)
            for (int64_t t = 1; t < T; ++t)
              std::memcpy(dst + c * T * P * P + t * P * P, dst + c * T * P * P, sizeof(float) * P * P);
        }
      }
    }
  }
  return out;
}

ProcessedImage preprocess_image(const Image& image, const ImageProcessorConfig& config, const PixelBudget& budget,
                                ResizeRule rule) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3)
    throw_error("image processor: invalid image ", image.width, "x", image.height);
  const int64_t factor = config.patch_size * config.merge_size;
  ProcessedImage out;
  if (!config.do_resize) {
    out = patchify_image(image, config);
  } else {
    std::pair<int64_t, int64_t> size;
    if (rule == ResizeRule::Transformers) {
      const int64_t min_pixels = budget.min_pixels.value_or(config.min_pixels);
      const int64_t max_pixels = budget.max_pixels.value_or(config.max_pixels);
      size = smart_resize(image.height, image.width, factor, min_pixels, max_pixels);
    } else {
      // qwen-vl-utils fetch_image: its own bounds (4 and 16384 merged tokens) unless the message sets them.
      const int64_t min_pixels = budget.min_pixels.value_or(4 * factor * factor);
      const int64_t max_pixels = budget.max_pixels.value_or(16384 * factor * factor);
      size = smart_resize_qwen_vl_utils(image.height, image.width, factor, min_pixels, max_pixels);
    }
    if (size.first <= 0 || size.second <= 0)
      throw_error("image processor: a ", image.width, "x", image.height, " image resizes to nothing (", size.second,
                  "x", size.first, ") with this pixel budget");
    if (size.first > (int64_t{1} << 30) / size.second)
      throw_error("image processor: resized size ", size.second, "x", size.first, " is unreasonably large");
    if (size.first == image.height && size.second == image.width) {
      out = patchify_image(image, config);  // tvF.resize returns its input unchanged for an equal size
    } else {
      // The resized copy is the only image-sized allocation here; it is freed before returning.
      const Image resized =
          resize_bicubic_antialias(image, static_cast<int>(size.second), static_cast<int>(size.first));
      out = patchify_image(resized, config);
    }
  }
  out.original_width = image.width;
  out.original_height = image.height;
  return out;
}

}  // namespace qwen3vl
