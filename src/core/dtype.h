// Element types that checkpoints store, and exact conversions between them and float.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qwen3vl {

// F32, F16, BF16: element types of checkpoints. U8: raw bytes (how quantized tensors are stored in safetensors).
// Q8, Q4: block-quantized weight formats made at load or by `qwen3vl quantize` (layout in ops/quant.h); they have
// no per-element size and are read only by ops::linear.
enum class DType { F32, F16, BF16, U8, Q8, Q4 };

size_t dtype_size(DType dtype);       // bytes per element; 0 for the block formats Q8 and Q4
const char* dtype_name(DType dtype);  // safetensors spelling: "F32", "F16", "BF16", "U8"; "Q8", "Q4"

inline float bf16_to_f32(uint16_t bits) {
  uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

// Round to nearest, ties to even (what torch does for .to(torch.bfloat16)); NaN stays NaN.
inline uint16_t f32_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

// The value a float takes after a round trip through bfloat16: HF rounds activations here in bf16 models.
inline float round_to_bf16(float value) { return bf16_to_f32(f32_to_bf16(value)); }

// F32, F16 or BF16: the element types stored as plain floating-point numbers.
inline bool is_float_dtype(DType dtype) { return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16; }

float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);

// Converts `count` elements of `dtype` (F32, F16, BF16 or U8) at `src` to float.
void convert_to_f32(DType dtype, const void* src, float* dst, size_t count);

// The bytes of `count` floats stored as `dtype` (F32 as is; BF16 / F16 rounded to nearest even, as torch's .to()).
std::vector<uint8_t> encode_floats(const float* values, size_t count, DType dtype);

}  // namespace qwen3vl
