// Per-request key/value cache of the text decoder, allocated once for a planned capacity.
// Keys are stored after q/k-norm and rotary embedding, values raw — as transformers' DynamicCache holds them, in
// the model's activation dtype: BF16 for a bf16 model (its keys and values are bf16 values, so nothing is rounded
// and the cache takes half the memory of float), F32 otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace qwen3vl {

class KVCache {
 public:
  KVCache(int64_t num_layers, int64_t capacity, int64_t num_kv_heads, int64_t head_dim, DType dtype = DType::F32);

  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }           // rows filled so far (same for every layer)
  void set_length(int64_t length) { length_ = length; }  // advanced by the decoder after all layers ran
  int64_t row_width() const { return row_width_; }      // num_kv_heads * head_dim
  DType dtype() const { return dtype_; }                 // F32 or BF16

  // [capacity, num_kv_heads, head_dim] of dtype().
  const void* keys(int64_t layer) const { return keys_[static_cast<size_t>(layer)].data(); }
  const void* values(int64_t layer) const { return values_[static_cast<size_t>(layer)].data(); }

  // Stores rows [first, first + count) of a layer from float rows (already bf16 values for a BF16 cache).
  void write(int64_t layer, int64_t first, int64_t count, const float* keys, const float* values);

 private:
  int64_t capacity_;
  int64_t row_width_;
  DType dtype_;
  int64_t length_ = 0;
  std::vector<std::vector<uint8_t>> keys_;
  std::vector<std::vector<uint8_t>> values_;
};

}  // namespace qwen3vl
