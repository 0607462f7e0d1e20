#include "ops/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

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

// An activation's code: round to nearest even. A finite block gives |value| <= 127 (+ rounding); an infinite or NaN
// activation gives NaN or inf here, whose conversion to an integer would be undefined: NaN becomes 0, the rest is
// clamped to the code range.
int8_t x_code(float value) {
  const float rounded = std::nearbyint(value);
  if (std::isnan(rounded)) return 0;
  return static_cast<int8_t>(std::clamp(rounded, -127.0f, 127.0f));
}

// Byte of weight (row i of its tile, col c of its group) in a unit's codes: Q8 one byte per weight; Q4 cols c and
// c + 32 share a byte (low and high nibble).
inline int64_t q8_code_byte(int64_t i, int64_t c) { return c / 4 * 64 + i * 4 + c % 4; }
inline int64_t q4_code_byte(int64_t i, int64_t c) { return (c % 32) / 4 * 64 + i * 4 + c % 4; }

uint8_t* unit_of(DType format, uint8_t* blob, int64_t cols, int64_t row, int64_t group) {
  return blob + (row / kQuantTileRows * quant_groups(cols) + group) * quant_unit_bytes(format);
}

// Row `row` of the blob from its float weights w[cols] (the padding cols zero).
void write_row(DType format, const float* w, int64_t cols, int64_t row, uint8_t* blob) {
  const int64_t i = row % kQuantTileRows;
  int8_t q[kQuantGroup];
  for (int64_t g = 0; g < quant_groups(cols); ++g) {
    uint8_t* unit = unit_of(format, blob, cols, row, g);
    uint16_t* scales = reinterpret_cast<uint16_t*>(unit + quant_unit_code_bytes(format));
    for (int64_t h = 0; h < 2; ++h) {
      const int64_t k0 = (2 * g + h) * kQuantBlock;
      const int count = static_cast<int>(std::clamp<int64_t>(cols - k0, 0, kQuantBlock));
      scales[h * kQuantTileRows + i] = quantize_block(w + std::min(k0, cols), count, format, q + h * kQuantBlock);
    }
    if (format == DType::Q8) {
      for (int64_t c = 0; c < kQuantGroup; ++c) unit[q8_code_byte(i, c)] = static_cast<uint8_t>(q[c]);
    } else {
      for (int64_t c = 0; c < kQuantGroup / 2; ++c)
        unit[q4_code_byte(i, c)] = static_cast<uint8_t>((q[c] + 8) | ((q[c + 32] + 8) << 4));
    }
  }
}

const uint8_t* unit_of(const WeightMatrix& w, int64_t row, int64_t group) {
  return unit_of(w.dtype, static_cast<uint8_t*>(const_cast<void*>(w.data)), w.cols, row, group);
}

}  // namespace

void quantize_rows(DType format, const float* src, int64_t rows, int64_t cols, int64_t r0, int64_t r1,
                   uint8_t* dst) {
  if (!is_quantized(format)) throw_error("internal: quantize_rows to ", dtype_name(format));
  for (int64_t r = r0; r < r1; ++r) write_row(format, src + (r - r0) * cols, cols, r, dst);
  if (r1 == rows && rows % kQuantTileRows != 0) {  // the last tile's padding rows: zero weights (codes 0, scales 0)
    const std::vector<float> zeros(static_cast<size_t>(cols), 0.f);
    for (int64_t r = rows; r < quant_tiles(rows) * kQuantTileRows; ++r) write_row(format, zeros.data(), cols, r, dst);
  }
}

int quant_code(const WeightMatrix& w, int64_t row, int64_t k) {
  const uint8_t* unit = unit_of(w, row, k / kQuantGroup);
  const int64_t i = row % kQuantTileRows, c = k % kQuantGroup;
  if (w.dtype == DType::Q8) return static_cast<int8_t>(unit[q8_code_byte(i, c)]);
  const uint8_t byte = unit[q4_code_byte(i, c)];
  return (c < kQuantGroup / 2 ? byte & 0xf : byte >> 4) - 8;
}

float quant_scale(const WeightMatrix& w, int64_t row, int64_t block) {
  const uint8_t* unit = unit_of(w, row, block / 2);
  uint16_t bits;
  std::memcpy(&bits, unit + quant_unit_code_bytes(w.dtype) + 2 * ((block % 2) * kQuantTileRows + row % kQuantTileRows),
              sizeof bits);
  return f16_to_f32(bits);
}

void dequantize_row(const WeightMatrix& w, int64_t row, float* out) {
  for (int64_t k = 0; k < w.cols; ++k)
    out[k] = quant_scale(w, row, k / kQuantBlock) * static_cast<float>(quant_code(w, row, k));
}

float quantize_x_block(const float* x, int count, int8_t* q) {
  float max_abs = 0.f;
  for (int i = 0; i < count; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
  const float inv = max_abs > 0.f ? 127.0f / max_abs : 0.f;
  for (int i = 0; i < kQuantBlock; ++i)
    q[i] = i < count ? x_code(x[i] * inv) : int8_t{0};
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
