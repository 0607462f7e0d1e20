#include "ops/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace qwen3vl {
namespace {

// Round to nearest, ties to even, for |v| < 2^22 (adding and removing 1.5 * 2^23 leaves the rounded value; no libm
// call: conversion runs this several times per weight).
inline float round_nearest(float v) { return (v + 12582912.0f) - 12582912.0f; }

// Squared error of a block of 32 weights (zero past the caller's count, NaN replaced by zero) quantized with scale
// d (fp16-exact) into [lo, hi]; writes the codes to q when not null. Branch-free with eight partial sums, so the
// compiler vectorizes it: conversion runs it several times per weight.
float block_error(const float* w, float d, float lo, float hi, int8_t* q) {
  const float inv = d != 0.f ? 1.0f / d : 0.f;
  float code[kQuantBlock], part[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  for (int i = 0; i < kQuantBlock; ++i) {
    float c = w[i] * inv;
    c = c < -256.f ? -256.f : c > 256.f ? 256.f : c;
    c = round_nearest(c);
    c = c < lo ? lo : c > hi ? hi : c;
    code[i] = c;
    const float diff = w[i] - d * c;
    part[i % 8] += diff * diff;
  }
  if (q)
    for (int i = 0; i < kQuantBlock; ++i) q[i] = static_cast<int8_t>(code[i]);
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

// value rounded to the nearest fp16 value (ties to even). Normal fp16 range by bit arithmetic (keep 10 mantissa
// bits), the rest through core/dtype's exact conversions: this runs several times per block of 32 weights.
float fp16_exact(float value) {
  const float magnitude = std::fabs(value);
  if (!(magnitude >= 6.103515625e-05f && magnitude < 65504.0f)) return f16_to_f32(f32_to_f16(value));
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  bits = (bits + 0xfffu + ((bits >> 13) & 1u)) & ~0x1fffu;
  float rounded;
  std::memcpy(&rounded, &bits, sizeof rounded);
  return rounded;
}

// One block of `count` weights (the rest of the 32 zero) into codes q[32] in [lo, hi]; returns the fp16 scale bits.
uint16_t quantize_block(const float* src, int count, DType format, int8_t* q) {
  std::fill(q, q + kQuantBlock, int8_t{0});
  float w[kQuantBlock];
  float max_abs = 0.f, extreme = 0.f;
  for (int i = 0; i < kQuantBlock; ++i) {
    w[i] = i < count && src[i] == src[i] ? src[i] : 0.f;
    if (std::fabs(w[i]) > max_abs) {
      max_abs = std::fabs(w[i]);
      extreme = w[i];
    }
  }
  if (max_abs == 0.f || !std::isfinite(max_abs)) return f32_to_f16(max_abs == 0.f ? 0.f : max_abs);
  if (format == DType::Q8) {
    const float d = fp16_exact(max_abs / 127.0f);
    block_error(w, d, -127, 127, q);
    return f32_to_f16(d);
  }
  // Q4: the range is asymmetric ([-8, 7]); mapping the extreme weight to -8 uses the whole range, but a slightly
  // larger step or the other sign can fit the rest of the block better. A few candidates, then least squares.
  float best_d = 0.f;
  float best_error = INFINITY;
  for (float divisor : {-8.0f, -7.5f, -7.0f, 7.0f, 7.5f}) {
    const float d = fp16_exact(extreme / divisor);
    const float error = block_error(w, d, -8, 7, nullptr);
    if (error < best_error) {
      best_error = error;
      best_d = d;
    }
  }
  int8_t codes[kQuantBlock];
  block_error(w, best_d, -8, 7, codes);
  double wq = 0, qq = 0;
  for (int i = 0; i < count; ++i) {
    wq += static_cast<double>(w[i]) * codes[i];
    qq += static_cast<double>(codes[i]) * codes[i];
  }
  if (qq > 0) {
    const float refined = fp16_exact(static_cast<float>(wq / qq));
    if (block_error(w, refined, -8, 7, nullptr) < best_error) best_d = refined;
  }
  block_error(w, best_d, -8, 7, q);
  return f32_to_f16(best_d);
}

}  // namespace

void quantize_rows(DType format, const float* src, int64_t rows, int64_t cols, int64_t r0, int64_t r1,
                   uint8_t* dst) {
  if (!is_quantized(format)) throw_error("internal: quantize_rows to ", dtype_name(format));
  const int64_t row_bytes = quant_row_bytes(format, cols), blocks = quant_blocks(cols);
  uint16_t* scales = reinterpret_cast<uint16_t*>(dst + rows * row_bytes);
  int8_t codes[kQuantGroup];
  for (int64_t r = r0; r < r1; ++r) {
    const float* w = src + (r - r0) * cols;
    uint8_t* out = dst + r * row_bytes;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t k0 = b * kQuantBlock;
      const int count = static_cast<int>(std::clamp<int64_t>(cols - k0, 0, kQuantBlock));
      int8_t* q = codes + (b % 2) * kQuantBlock;
      scales[r * blocks + b] = quantize_block(w + std::min(k0, cols), count, format, q);
      if (format == DType::Q8) {
        std::memcpy(out + k0, q, kQuantBlock);
      } else if (b % 2 == 1) {  // a group of 64: byte i = (q[i] + 8) | (q[32 + i] + 8) << 4
        uint8_t* group = out + (b / 2) * (kQuantGroup / 2);
        for (int i = 0; i < 32; ++i)
          group[i] = static_cast<uint8_t>((codes[i] + 8) | ((codes[32 + i] + 8) << 4));
      }
    }
  }
}

int quant_code(const WeightMatrix& w, int64_t row, int64_t k) {
  const uint8_t* q = static_cast<const uint8_t*>(w.data) + row * quant_row_bytes(w.dtype, w.cols);
  if (w.dtype == DType::Q8) return static_cast<int8_t>(q[k]);
  const uint8_t byte = q[(k / kQuantGroup) * (kQuantGroup / 2) + k % (kQuantGroup / 2)];
  return ((k % kQuantGroup) < kQuantGroup / 2 ? byte & 0xf : byte >> 4) - 8;
}

void dequantize_row(const WeightMatrix& w, int64_t row, float* out) {
  const uint16_t* scales = quant_scales(w) + row * quant_blocks(w.cols);
  for (int64_t k = 0; k < w.cols; ++k)
    out[k] = f16_to_f32(scales[k / kQuantBlock]) * static_cast<float>(quant_code(w, row, k));
}

float quantize_x_block(const float* x, int count, int8_t* q) {
  float max_abs = 0.f;
  for (int i = 0; i < count; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
  const float inv = max_abs > 0.f ? 127.0f / max_abs : 0.f;
  for (int i = 0; i < kQuantBlock; ++i)
    q[i] = i < count ? static_cast<int8_t>(std::nearbyint(x[i] * inv)) : int8_t{0};
  return max_abs / 127.0f;
}

DType parse_weight_format(const std::string& name, const char* what) {
  if (name == "q8") return DType::Q8;
  if (name == "q4") return DType::Q4;
  if (name == "bf16") return DType::BF16;
  if (name == "f16") return DType::F16;
  throw_error(what, ": unknown weight format '", name, "' (expected bf16, f16, q8 or q4)");
}

const char* weight_format_name(DType dtype) {
  switch (dtype) {
    case DType::Q8: return "q8";
    case DType::Q4: return "q4";
    case DType::BF16: return "bf16";
    case DType::F16: return "f16";
    default: break;
  }
  return "f32";
}

}  // namespace qwen3vl
