#include "model/kv_cache.h"

#include <sys/mman.h>

#include <cstring>
#include <new>

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
    : capacity_(capacity), row_width_(num_kv_heads * head_dim), dtype_(dtype), num_layers_(num_layers),
      memory_(nullptr, Unmap{0}) {
  if (dtype != DType::F32 && dtype != DType::BF16) throw_error("internal: a KV cache of ", dtype_name(dtype));
  if (num_layers < 0 || capacity < 0 || num_kv_heads < 0 || head_dim < 0)
    throw_error("internal: a KV cache of negative size");
  size_t total = 0;
  if (__builtin_mul_overflow(static_cast<size_t>(capacity), static_cast<size_t>(row_width_) * dtype_size(dtype),
                             &part_bytes_) ||
      __builtin_mul_overflow(part_bytes_, 2 * static_cast<size_t>(num_layers), &total))
    throw_error("a KV cache of ", capacity, " tokens does not fit in memory");
  if (total == 0) return;
  // Anonymous pages: zero when first read, allocated when first written (mmap(2)); no up-front memset.
  void* memory = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw std::bad_alloc();
  memory_ = std::unique_ptr<uint8_t, Unmap>(static_cast<uint8_t*>(memory), Unmap{total});
}

void KVCache::Unmap::operator()(uint8_t* memory) const {
  if (memory) munmap(memory, bytes);
}

void KVCache::write(int64_t layer, int64_t first, int64_t count, const float* keys, const float* values) {
  if (layer < 0 || layer >= num_layers_ || first < 0 || count < 0 || first > capacity_ - count)
    throw_error("internal: KV cache rows [", first, ", ", first + count, ") of layer ", layer, " outside its ",
                capacity_, " rows");
  const size_t offset = static_cast<size_t>(first * row_width_) * dtype_size(dtype_);
  const size_t elements = static_cast<size_t>(count * row_width_);
  store_rows(dtype_, keys, elements, layer_data(layer, 0) + offset);
  store_rows(dtype_, values, elements, layer_data(layer, 1) + offset);
}

}  // namespace qwen3vl
