// The storage size of the block-quantized weight formats (DType::Q8, DType::Q4): what a quantized tensor in a
// checkpoint must hold. The byte order inside the blob and the arithmetic are ops/quant.h's; the sizes live here so
// that the safetensors loader (io) can check a quantized tensor's bytes when it reads the header.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace qwen3vl {

constexpr const char* kQuantLayoutName = "tiles16x64";  // the layout of ops/quant.h, in quantized tensors' metadata

constexpr int64_t kQuantBlock = 32;     // weights per scale
constexpr int64_t kQuantGroup = 64;     // cols per unit (two blocks)
constexpr int64_t kQuantTileRows = 16;  // rows per unit

inline bool is_quantized(DType dtype) { return dtype == DType::Q8 || dtype == DType::Q4; }
inline int64_t quant_padded_cols(int64_t cols) { return (cols + kQuantGroup - 1) / kQuantGroup * kQuantGroup; }
inline int64_t quant_tiles(int64_t rows) { return (rows + kQuantTileRows - 1) / kQuantTileRows; }
inline int64_t quant_groups(int64_t cols) { return quant_padded_cols(cols) / kQuantGroup; }
inline int64_t quant_blocks(int64_t cols) { return quant_padded_cols(cols) / kQuantBlock; }
// Bytes of one unit's codes, and of the whole unit (codes + 32 fp16 scales).
inline int64_t quant_unit_code_bytes(DType dtype) { return dtype == DType::Q4 ? 512 : 1024; }
inline int64_t quant_unit_bytes(DType dtype) { return quant_unit_code_bytes(dtype) + 64; }
// Bytes of the whole blob of a [rows, cols] matrix whose sizes are known to be sane (bound weights).
inline size_t quant_matrix_bytes(DType dtype, int64_t rows, int64_t cols) {
  return static_cast<size_t>(quant_tiles(rows) * quant_groups(cols) * quant_unit_bytes(dtype));
}

// `count` blobs of [rows, cols] for any sizes read from a file: false when the size does not fit in 64 bits.
inline bool quant_blob_bytes(DType dtype, uint64_t count, uint64_t rows, uint64_t cols, uint64_t* bytes) {
  const uint64_t tiles = rows / kQuantTileRows + (rows % kQuantTileRows != 0);
  const uint64_t groups = cols / kQuantGroup + (cols % kQuantGroup != 0);
  uint64_t units = 0;
  return !__builtin_mul_overflow(tiles, groups, &units) && !__builtin_mul_overflow(units, count, &units) &&
         !__builtin_mul_overflow(units, static_cast<uint64_t>(quant_unit_bytes(dtype)), bytes);
}

}  // namespace qwen3vl
