#include "image_cache.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace qwen3vl {
namespace server {

namespace {
constexpr size_t kMaxRememberedSizes = 65536;
}

std::string content_hash(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

ImageCache::ImageCache(size_t max_bytes) : max_bytes_(max_bytes) { stats_.max_bytes = max_bytes; }

std::optional<ImageCache::Size> ImageCache::size_of(const std::string& hash) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sizes_.find(hash);
  if (it == sizes_.end()) return std::nullopt;
  return it->second;
}

void ImageCache::remember_size(const std::string& hash, Size size) {
  if (max_bytes_ == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (sizes_.size() >= kMaxRememberedSizes) sizes_.clear();
  sizes_[hash] = size;
}

std::string ImageCache::make_key(const std::string& hash, int64_t min_pixels, int64_t max_pixels,
                                 const std::string& resize_rule, const std::string& tower_adapters) {
  std::string key = hash + "/" + std::to_string(min_pixels) + "/" + std::to_string(max_pixels) + "/" + resize_rule;
  if (!tower_adapters.empty()) key += "/lora " + tower_adapters;
  return key;
}

size_t ImageCache::entry_bytes(const std::string& key, const Entry& entry) {
  size_t floats = entry.features->embeds.size();
  for (const auto& level : entry.features->deepstack) floats += level.size();
  return floats * sizeof(float) + key.size() * 2 + 256;
}

std::optional<ImageCache::Entry> ImageCache::find(const std::string& key, bool count) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    if (count) ++stats_.misses;
    return std::nullopt;
  }
  if (count) {
    ++stats_.hits;
    lru_.splice(lru_.begin(), lru_, it->second);
  }
  return it->second->second;
}

void ImageCache::insert(const std::string& key, Entry entry) {
  if (!entry.features) return;
  const size_t bytes = entry_bytes(key, entry);
  if (bytes > max_bytes_) return;
  entry.image.pixel_values.clear();
  entry.image.pixel_values.shrink_to_fit();
  std::lock_guard<std::mutex> lock(mutex_);
  if (index_.count(key)) return;  // another request encoded the same image meanwhile
  while (!lru_.empty() && stats_.bytes + bytes > max_bytes_) {
    stats_.bytes -= entry_bytes(lru_.back().first, lru_.back().second);
    index_.erase(lru_.back().first);
    lru_.pop_back();
    ++stats_.evictions;
  }
  lru_.emplace_front(key, std::move(entry));
  index_[key] = lru_.begin();
  stats_.bytes += bytes;
}

ImageCache::Stats ImageCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Stats out = stats_;
  out.entries = lru_.size();
  return out;
}

}  // namespace server
}  // namespace qwen3vl
