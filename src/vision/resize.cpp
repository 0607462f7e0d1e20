#include "vision/resize.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"

// The weights are computed in double and quantized; a fused multiply-add would change the last bit of a weight and,
// rarely, its int16 rounding. ATen's generic code is built without contraction, so forbid it here too even when
// this file is compiled with -march=native or -mfma.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace qwen3vl {
namespace {

// ATen HelperInterpCubic::aa_filter<double, use_keys_cubic=true> with cubic_convolution1/2 (UpSample.h), same
// operation order.
double keys_cubic(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2.0) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0.0;
}

// Runs body(begin, end) over [0, count) split across a few threads; each output row/column is independent, so the
// result does not depend on the split. Exception-safe: an exception in any piece is rethrown here after every
// thread has been joined, and a thread that cannot be started leaves its piece to the calling thread. (Own threads
// rather than the model's ThreadPool: preprocessing is called without one, from the CLI and the server alike.)
template <typename Body>
void parallel_rows(int64_t count, int64_t work_per_row, Body body) {
  const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  int64_t threads = std::min<int64_t>({static_cast<int64_t>(hardware), 16, count});
  if (count * work_per_row < (int64_t{1} << 20)) threads = 1;  // not worth a thread
  if (threads <= 1) {
    body(int64_t{0}, count);
    return;
  }
  std::mutex error_mutex;
  std::exception_ptr error;
  auto piece = [&](int64_t begin, int64_t end) {
    try {
      body(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  const int64_t chunk = (count + threads - 1) / threads;
  std::vector<std::thread> pool;
  std::vector<std::pair<int64_t, int64_t>> here;  // pieces the calling thread runs: the first, and any not started
  pool.reserve(static_cast<size_t>(threads));
  here.reserve(static_cast<size_t>(threads));
  here.emplace_back(0, std::min(count, chunk));
  for (int64_t begin = chunk; begin < count; begin += chunk) {
    const int64_t end = std::min(count, begin + chunk);
    try {
      pool.emplace_back(piece, begin, end);
    } catch (const std::system_error&) {
      here.emplace_back(begin, end);
    }
  }
  for (const auto& [begin, end] : here) piece(begin, end);
  for (auto& thread : pool) thread.join();
  if (error) std::rethrow_exception(error);
}

inline uint8_t finish(int32_t sum, unsigned precision) {
  // Arithmetic shift then saturation, as the AVX kernel's srai + packs + packus (and the scalar fallback's clamp).
  const int32_t value = sum >> precision;
  return static_cast<uint8_t>(value < 0 ? 0 : (value > 255 ? 255 : value));
}

}  // namespace

ResizeAxisWeights compute_bicubic_aa_weights(int64_t input_size, int64_t output_size) {
  if (input_size <= 0 || output_size <= 0) throw_error("resize: bad sizes ", input_size, " -> ", output_size);
  ResizeAxisWeights axis;
  // area_pixel_compute_scale<double>(align_corners=false, no scale factor) = input / output.
  const double scale = static_cast<double>(input_size) / static_cast<double>(output_size);
  constexpr int interp_size = 4;  // bicubic
  const double support = (scale >= 1.0) ? (interp_size * 0.5) * scale : interp_size * 0.5;
  const int64_t taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  axis.taps_stride = taps;
  axis.first.resize(output_size);
  axis.count.resize(output_size);
  std::vector<double> weights(static_cast<size_t>(output_size * taps), 0.0);

  // _compute_indices_min_size_weights_aa, term by term.
  double weight_max = 0.0;
  const double invscale = (scale >= 1.0) ? 1.0 / scale : 1.0;
  for (int64_t i = 0; i < output_size; ++i) {
    const double center = scale * (i + 0.5);
    const int64_t xmin = std::max(static_cast<int64_t>(center - support + 0.5), int64_t{0});
    int64_t xsize = std::min(static_cast<int64_t>(center + support + 0.5), input_size) - xmin;
    xsize = std::clamp(xsize, int64_t{0}, taps);
    double* w = &weights[static_cast<size_t>(i * taps)];
    double total = 0.0;
    for (int64_t j = 0; j < xsize; ++j) {
      w[j] = keys_cubic((j + xmin - center + 0.5) * invscale);
      total += w[j];
    }
    if (total != 0.0) {
      for (int64_t j = 0; j < xsize; ++j) {
        w[j] /= total;
        weight_max = std::max(weight_max, w[j]);
      }
    }
    axis.first[i] = xmin;
    axis.count[i] = xsize;
  }

  // _compute_index_ranges_int16_weights: the largest precision (< 22 bits) at which the axis's largest weight
  // still fits int16 with one bit of headroom, then round half away from zero.
  unsigned precision = 0;
  for (precision = 0; precision < 22; ++precision) {
    const int next_value = static_cast<int>(0.5 + weight_max * (1 << (precision + 1)));
    if (next_value >= (1 << 15)) break;
  }
  axis.precision = precision;
  axis.weights.resize(weights.size());
  for (size_t k = 0; k < weights.size(); ++k) {
    const double v = weights[k] * (1 << precision);
    axis.weights[k] = static_cast<int16_t>(v < 0 ? static_cast<int>(-0.5 + v) : static_cast<int>(0.5 + v));
  }
  if (precision == 0) throw_error("resize: degenerate weights for ", input_size, " -> ", output_size);
  return axis;
}

Image resize_bicubic_antialias(const Image& image, int out_width, int out_height) {
  if (out_width <= 0 || out_height <= 0) throw_error("resize: bad output size ", out_width, "x", out_height);
  const int64_t in_w = image.width, in_h = image.height;
  if (in_w <= 0 || in_h <= 0 || image.rgb.size() != static_cast<size_t>(in_w * in_h * 3))
    throw_error("resize: bad input image ", in_w, "x", in_h);
  if (in_w == out_width && in_h == out_height) return image;

  // Horizontal pass: every input row, width in_w -> out_width.
  Image horizontal;
  const Image* source = &image;
  if (out_width != in_w) {
    const ResizeAxisWeights ax = compute_bicubic_aa_weights(in_w, out_width);
    horizontal.width = out_width;
    horizontal.height = static_cast<int>(in_h);
    horizontal.rgb.resize(static_cast<size_t>(out_width) * in_h * 3);
    const int32_t initial = int32_t{1} << (ax.precision - 1);
    parallel_rows(in_h, in_w * 3, [&](int64_t y0, int64_t y1) {
      for (int64_t y = y0; y < y1; ++y) {
        const uint8_t* in_row = &image.rgb[static_cast<size_t>(y * in_w * 3)];
        uint8_t* out_row = &horizontal.rgb[static_cast<size_t>(y * out_width * 3)];
        for (int64_t x = 0; x < out_width; ++x) {
          const int16_t* w = &ax.weights[static_cast<size_t>(x * ax.taps_stride)];
          const uint8_t* px = in_row + ax.first[x] * 3;
          int32_t r = initial, g = initial, b = initial;
          for (int64_t k = 0; k < ax.count[x]; ++k) {
            r += px[k * 3 + 0] * w[k];
            g += px[k * 3 + 1] * w[k];
            b += px[k * 3 + 2] * w[k];
          }
          out_row[x * 3 + 0] = finish(r, ax.precision);
          out_row[x * 3 + 1] = finish(g, ax.precision);
          out_row[x * 3 + 2] = finish(b, ax.precision);
        }
      }
    });
    if (out_height == in_h) return horizontal;
    source = &horizontal;
  }

  // Vertical pass: rows in_h -> out_height over the (possibly already resized) width.
  const ResizeAxisWeights ay = compute_bicubic_aa_weights(in_h, out_height);
  const int64_t row_bytes = static_cast<int64_t>(out_width) * 3;
  Image out;
  out.width = out_width;
  out.height = out_height;
  out.rgb.resize(static_cast<size_t>(row_bytes * out_height));
  const int32_t initial = int32_t{1} << (ay.precision - 1);
  parallel_rows(out_height, row_bytes * ay.count[0], [&](int64_t y0, int64_t y1) {
    std::vector<int32_t> sums(static_cast<size_t>(row_bytes));
    for (int64_t y = y0; y < y1; ++y) {
      std::fill(sums.begin(), sums.end(), initial);
      const int16_t* w = &ay.weights[static_cast<size_t>(y * ay.taps_stride)];
      for (int64_t k = 0; k < ay.count[y]; ++k) {
        const uint8_t* in_row = &source->rgb[static_cast<size_t>((ay.first[y] + k) * row_bytes)];
        const int32_t wk = w[k];
        for (int64_t i = 0; i < row_bytes; ++i) sums[i] += in_row[i] * wk;
      }
      uint8_t* out_row = &out.rgb[static_cast<size_t>(y * row_bytes)];
      for (int64_t i = 0; i < row_bytes; ++i) out_row[i] = finish(sums[i], ay.precision);
    }
  });
  return out;
}

}  // namespace qwen3vl
