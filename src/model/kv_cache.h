// Per-request key/value cache of the text decoder, allocated once for a planned capacity.
// Keys are stored after q/k-norm and rotary embedding, values raw — as transformers' DynamicCache holds them, in
// the model's activation dtype: BF16 for a bf16 model (its keys and values are bf16 values, so nothing is rounded
// and the cache takes half the memory of float), F32 otherwise.
//
// The memory is one anonymous mapping: its pages read as zero and cost nothing until a row is written, so a request
// pays (in time and resident memory) only for the context it uses, not for the whole capacity up front. Attention
// reads rows [0, length + n) after writing rows [length, length + n), so it never depends on unwritten rows anyway.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

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
  const void* keys(int64_t layer) const { return layer_data(layer, 0); }
  const void* values(int64_t layer) const { return layer_data(layer, 1); }

  // Stores rows [first, first + count) of a layer from float rows (already bf16 values for a BF16 cache).
  void write(int64_t layer, int64_t first, int64_t count, const float* keys, const float* values);

 private:
  struct Unmap {
    size_t bytes;
    void operator()(uint8_t* memory) const;
  };
  uint8_t* layer_data(int64_t layer, int part) const {
    return memory_.get() + (2 * static_cast<size_t>(layer) + static_cast<size_t>(part)) * part_bytes_;
  }

  int64_t capacity_;
  int64_t row_width_;
  DType dtype_;
  int64_t length_ = 0;
  int64_t num_layers_;
  size_t part_bytes_ = 0;  // the keys (or values) of one layer
  std::unique_ptr<uint8_t, Unmap> memory_;  // per layer: keys, then values
};

}  // namespace qwen3vl
