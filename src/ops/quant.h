// Block-quantized weight formats (DType::Q8, DType::Q4) and their scalar reference arithmetic.
//
// A quantized [rows, cols] matrix (always out-major, WeightLayout::OutIn) is one contiguous blob:
//   quants  rows x row_bytes   each row's cols padded with zeros to kc = a multiple of 64
//   scales  rows x kc/32       fp16, one per block of 32 consecutive weights of a row
// Q8: one int8 per weight, q in [-127, 127], weight = scale * q (symmetric, like llama.cpp's Q8_0: 8.5 bits/weight).
// Q4: symmetric 4-bit, q in [-8, 7], stored offset by 8 as nibbles; in each group of 64 weights of a row, byte i
//     (0..31) holds weight i in its low nibble and weight 32 + i in its high nibble (4.5 bits/weight), so one 32-byte
//     load and two masks give 64 weights in order. Why these layouts: docs/performance.md, "Quantized weights".
//
// ops::linear with a quantized weight quantizes each row of x per block of 32 too (int8, scale = max|x| / 127,
// round to nearest even) and computes y = sum over blocks of (w_scale * x_scale) * (integer dot product of the
// block), in float: the kernels (integer dot-product instructions) and the reference differ only in the order of the
// float sum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "ops/ops.h"

namespace qwen3vl {

constexpr int64_t kQuantBlock = 32;  // weights per scale
constexpr int64_t kQuantGroup = 64;  // row padding: the kernels read 64 weights at a time

inline bool is_quantized(DType dtype) { return dtype == DType::Q8 || dtype == DType::Q4; }
inline int64_t quant_padded_cols(int64_t cols) { return (cols + kQuantGroup - 1) / kQuantGroup * kQuantGroup; }
inline int64_t quant_blocks(int64_t cols) { return quant_padded_cols(cols) / kQuantBlock; }
inline int64_t quant_row_bytes(DType dtype, int64_t cols) {
  return dtype == DType::Q4 ? quant_padded_cols(cols) / 2 : quant_padded_cols(cols);
}
// Bytes of the whole blob.
inline size_t quant_matrix_bytes(DType dtype, int64_t rows, int64_t cols) {
  return static_cast<size_t>(rows) * static_cast<size_t>(quant_row_bytes(dtype, cols) + 2 * quant_blocks(cols));
}
// The fp16 scales of a quantized matrix: [rows][quant_blocks(cols)] after the quants.
inline const uint16_t* quant_scales(const WeightMatrix& w) {
  return reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(w.data) + w.rows * quant_row_bytes(w.dtype, w.cols));
}

// Quantizes rows [r0, r1) of a [rows, cols] matrix, given as floats in src [r1 - r0, cols], into the blob `dst` of
// the whole matrix in `format` (Q8 or Q4). Rows are independent, so disjoint ranges may run on different threads. Q8: scale =
// max|w| / 127 (as fp16), q = round(w / scale). Q4: the scale (fp16) is the best of a few candidates around max|w| / 8
// by squared error, refined by least squares.
void quantize_rows(DType format, const float* src, int64_t rows, int64_t cols, int64_t r0, int64_t r1, uint8_t* dst);

// The integer code of weight (row, k) of a quantized matrix (the weight is its block's scale times the code).
int quant_code(const WeightMatrix& w, int64_t row, int64_t k);

// Row `row` of a quantized matrix as float (tests, and dequantizing for error measurements).
void dequantize_row(const WeightMatrix& w, int64_t row, float* out);

// One block of x (count <= 32 values, the rest taken as zero) as int8 the way ops::linear quantizes it: returns the
// scale max|x| / 127 and writes q[32] = round-to-nearest-even(x * (127 / max|x|)) (all zero when max|x| is 0).
float quantize_x_block(const float* x, int count, int8_t* q);

// "q8" / "q4" -> DType::Q8 / Q4, "bf16" / "f16" -> BF16 / F16; throws Error naming `what` otherwise.
DType parse_weight_format(const std::string& name, const char* what);
const char* weight_format_name(DType dtype);  // "q8", "q4", "bf16", "f16", "f32"

}  // namespace qwen3vl
