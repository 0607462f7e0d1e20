#include "model/kv_cache.h"

namespace qwen3vl {

KVCache::KVCache(int64_t num_layers, int64_t capacity, int64_t num_kv_heads, int64_t head_dim)
    : capacity_(capacity), row_width_(num_kv_heads * head_dim) {
  const size_t size = static_cast<size_t>(capacity * row_width_);
  keys_.assign(static_cast<size_t>(num_layers), std::vector<float>(size));
  values_.assign(static_cast<size_t>(num_layers), std::vector<float>(size));
}

}  // namespace qwen3vl
