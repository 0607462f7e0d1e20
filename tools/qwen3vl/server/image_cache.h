// The image-embedding cache: vision-tower outputs keyed by the image's CONTENT (SHA-256 of its encoded bytes) plus
// the pixel budget it was processed with (and the LoRA adapters that change the tower, if any), so a repeated image
// is not encoded twice. Keys never involve token ids (<|image_pad|> ids are the same for every image). Bounded by
// bytes, least recently used entries go first. Thread-safe; entries are shared, immutable vision outputs.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "model/vision_encoder.h"
#include "vision/image_processor.h"

namespace qwen3vl {
namespace server {

// Lower-case hex SHA-256 of `bytes`.
std::string content_hash(const std::string& bytes);

class ImageCache {
 public:
  explicit ImageCache(size_t max_bytes);

  struct Entry {
    ProcessedImage image;                           // sizes and grid; pixel_values left empty
    std::shared_ptr<const VisionOutput> features;   // encode_images output for this image
  };
  struct Size {
    int64_t width = 0, height = 0;
  };
  struct Stats {
    uint64_t hits = 0, misses = 0, evictions = 0;
    size_t entries = 0, bytes = 0, max_bytes = 0;
  };

  // Original sizes by content hash, so a repeated image needs no decoding to plan its budget.
  std::optional<Size> size_of(const std::string& hash) const;
  void remember_size(const std::string& hash, Size size);

  // `key` = content hash + budget (make_key). find counts a hit or a miss and makes the entry the most recent,
  // unless `count` is false (a lookup for the grid alone, which uses no features: POST /tokenize).
  std::optional<Entry> find(const std::string& key, bool count = true);
  void insert(const std::string& key, Entry entry);
  // `tower_adapters`: the key of the request's LoRA adapters when they change the vision tower (its features then
  // differ from the base's), else empty.
  static std::string make_key(const std::string& hash, int64_t min_pixels, int64_t max_pixels,
                              const std::string& resize_rule, const std::string& tower_adapters = "");

  Stats stats() const;

 private:
  static size_t entry_bytes(const std::string& key, const Entry& entry);

  const size_t max_bytes_;
  mutable std::mutex mutex_;
  std::list<std::pair<std::string, Entry>> lru_;  // most recent first
  std::unordered_map<std::string, std::list<std::pair<std::string, Entry>>::iterator> index_;
  std::unordered_map<std::string, Size> sizes_;
  Stats stats_;
};

}  // namespace server
}  // namespace qwen3vl
