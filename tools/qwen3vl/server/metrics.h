// Server counters, rendered for GET /metrics in the Prometheus text format (version 0.0.4).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "image_cache.h"

namespace qwen3vl {
namespace server {

struct CompletionFigures {
  int64_t prompt_tokens = 0, completion_tokens = 0, visual_tokens = 0, images = 0, cached_images = 0, videos = 0;
  double media_seconds = 0, vision_seconds = 0, prefill_seconds = 0, decode_seconds = 0, total_seconds = 0;
};

// Resident set size of this process in bytes (/proc/self/statm), 0 when unknown.
int64_t resident_memory_bytes();

class Metrics {
 public:
  void count_response(int status);
  void count_completion(const CompletionFigures& figures);
  void count_cancelled();
  void count_rejected();

  struct Gauges {
    int running = 0, waiting = 0, slots = 0;
    ImageCache::Stats cache;
  };
  std::string render(const Gauges& gauges) const;

 private:
  mutable std::mutex mutex_;
  std::map<int, uint64_t> responses_;
  uint64_t completions_ = 0, cancelled_ = 0, rejected_ = 0;
  CompletionFigures totals_;
};

}  // namespace server
}  // namespace qwen3vl
