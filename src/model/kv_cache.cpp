#include "model/kv_cache.h"

#include <cstring>

#include "core/error.h"

namespace qwen3vl {
namespace {

void store_rows(DType dtype, const float* src, size_t count, uint8_t* dst) {
  if (dtype == DType::F32) {
    std::memcpy(dst, src, count * sizeof(float));
    return;
  }
  uint16_t* out = reinterpret_cast<uint16_t*>(dst);
  for (size_t i = 0; i < count; ++i) out[i] = f32_to_bf16(src[i]);
}

}  // namespace

KVCache::KVCache(int64_t num_layers, int64_t capacity, int64_t num_kv_heads, int64_t head_dim, DType dtype)
    : capacity_(capacity), row_width_(num_kv_heads * head_dim), dtype_(dtype) {
  if (dtype != DType::F32 && dtype != DType::BF16) throw_error("internal: a KV cache of ", dtype_name(dtype));
  const size_t bytes = static_cast<size_t>(capacity * row_width_) * dtype_size(dtype);
  keys_.assign(static_cast<size_t>(num_layers), std::vector<uint8_t>(bytes));
  values_.assign(static_cast<size_t>(num_layers), std::vector<uint8_t>(bytes));
}

void KVCache::write(int64_t layer, int64_t first, int64_t count, const float* keys, const float* values) {
  const size_t offset = static_cast<size_t>(first * row_width_) * dtype_size(dtype_);
  const size_t elements = static_cast<size_t>(count * row_width_);
  store_rows(dtype_, keys, elements, keys_[static_cast<size_t>(layer)].data() + offset);
  store_rows(dtype_, values, elements, values_[static_cast<size_t>(layer)].data() + offset);
}

}  // namespace qwen3vl
