// Block-quantized weight formats (DType::Q8, DType::Q4) and their scalar reference arithmetic.
//
// A quantized [rows, cols] matrix (always out-major, WeightLayout::OutIn) is one contiguous blob of units: rows are
// padded with zero weights to tiles of 16 and cols to groups of 64, and unit (tile t, group g) of kQuantTileRows x
// kQuantGroup weights sits at byte (t * groups + g) * quant_unit_bytes, so a tile's units are one sequential stream.
// A unit is its codes, then 32 fp16 scales: block 0 of the group (its cols 0..31) for rows 0..15, then block 1.
// Codes are stored in 64-byte vectors, one 32-bit word per row (byte 4i + j of a vector belongs to row i):
// Q8: one int8 per weight, q in [-127, 127], weight = scale * q (symmetric, like llama.cpp's Q8_0: 8.5 bits/weight);
//     vector v (0..15) holds cols 4v .. 4v + 3 of the group.
// Q4: symmetric 4-bit, q in [-8, 7], stored offset by 8 as nibbles (4.5 bits/weight); vector v (0..7) holds cols
//     4v .. 4v + 3 in the low nibbles and cols 32 + 4v .. 32 + 4v + 3 in the high nibbles.
// So one vector is the unsigned-times-signed dot-product operand for 16 rows and four cols, and the x it multiplies
// is one broadcast 32-bit word. Why this layout: docs/performance.md, "Quantized weights".
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
#include "core/quant_layout.h"  // the formats' constants and blob sizes
#include "ops/ops.h"

namespace qwen3vl {

// Quantizes rows [r0, r1) of a [rows, cols] matrix, given as floats in src [r1 - r0, cols], into the blob `dst` of
// the whole matrix in `format` (Q8 or Q4). Rows write disjoint bytes, so disjoint ranges may run on different
// threads; the range that ends at `rows` also writes the padding rows of the last tile (zero). Q8: scale =
// max|w| / 127 (as fp16), q = round(w / scale). Q4: the scale (fp16) is the best of a few candidates around max|w| / 8
// by squared error, refined by least squares.
void quantize_rows(DType format, const float* src, int64_t rows, int64_t cols, int64_t r0, int64_t r1, uint8_t* dst);

// The integer code of weight (row, k) of a quantized matrix (the weight is its block's scale times the code), and
// the scale of block `block` (cols 32 * block ..) of a row.
int quant_code(const WeightMatrix& w, int64_t row, int64_t k);
float quant_scale(const WeightMatrix& w, int64_t row, int64_t block);

// Row `row` of a quantized matrix as float (tests, and dequantizing for error measurements).
void dequantize_row(const WeightMatrix& w, int64_t row, float* out);

// One block of x (count <= 32 values, the rest taken as zero) as int8 the way ops::linear quantizes it: returns the
// scale max|x| / 127 and writes q[32] = round-to-nearest-even(x * (127 / max|x|)) (all zero when max|x| is 0).
float quantize_x_block(const float* x, int count, int8_t* q);

// "q8" / "q4" -> DType::Q8 / Q4, "bf16" / "f16" -> BF16 / F16; throws Error naming `what` otherwise.
DType parse_weight_format(const std::string& name, const char* what);
const char* weight_format_name(DType dtype);  // "q8", "q4", "bf16", "f16", "f32"

}  // namespace qwen3vl
