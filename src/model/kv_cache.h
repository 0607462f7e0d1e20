// Per-request key/value cache of the text decoder, allocated once for a planned capacity.
// Keys are stored after q/k-norm and rotary embedding, values raw — as transformers' DynamicCache holds them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace qwen3vl {

class KVCache {
 public:
  KVCache(int64_t num_layers, int64_t capacity, int64_t num_kv_heads, int64_t head_dim);

  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }           // rows filled so far (same for every layer)
  void set_length(int64_t length) { length_ = length; }  // advanced by the decoder after all layers ran
  int64_t row_width() const { return row_width_; }      // num_kv_heads * head_dim

  float* keys(int64_t layer) { return keys_[layer].data(); }      // [capacity, num_kv_heads, head_dim]
  float* values(int64_t layer) { return values_[layer].data(); }  // [capacity, num_kv_heads, head_dim]

 private:
  int64_t capacity_;
  int64_t row_width_;
  int64_t length_ = 0;
  std::vector<std::vector<float>> keys_;
  std::vector<std::vector<float>> values_;
};

}  // namespace qwen3vl
