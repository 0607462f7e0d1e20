#include "metrics.h"

#include <unistd.h>

#include <cstdio>
#include <sstream>

namespace qwen3vl {
namespace server {

int64_t resident_memory_bytes() {
  std::FILE* file = std::fopen("/proc/self/statm", "r");
  if (!file) return 0;
  long long size = 0, resident = 0;
  const int read = std::fscanf(file, "%lld %lld", &size, &resident);
  std::fclose(file);
  return read == 2 ? resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

void Metrics::count_response(int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++responses_[status];
}

void Metrics::count_completion(const CompletionFigures& f) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++completions_;
  totals_.prompt_tokens += f.prompt_tokens;
  totals_.completion_tokens += f.completion_tokens;
  totals_.visual_tokens += f.visual_tokens;
  totals_.images += f.images;
  totals_.cached_images += f.cached_images;
  totals_.videos += f.videos;
  totals_.media_seconds += f.media_seconds;
  totals_.vision_seconds += f.vision_seconds;
  totals_.prefill_seconds += f.prefill_seconds;
  totals_.decode_seconds += f.decode_seconds;
  totals_.total_seconds += f.total_seconds;
}

void Metrics::count_cancelled() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++cancelled_;
}

void Metrics::count_rejected() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++rejected_;
}

std::string Metrics::render(const Gauges& g) const {
  std::ostringstream out;
  auto metric = [&out](const char* name, const char* type, const char* help, auto value) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n' << name << ' ' << value
        << '\n';
  };
  std::lock_guard<std::mutex> lock(mutex_);
  out << "# HELP qwen3vl_http_responses_total HTTP responses by status code.\n"
         "# TYPE qwen3vl_http_responses_total counter\n";
  for (const auto& [status, count] : responses_)
    out << "qwen3vl_http_responses_total{code=\"" << status << "\"} " << count << '\n';
  metric("qwen3vl_completions_total", "counter", "Chat completions finished.", completions_);
  metric("qwen3vl_completions_cancelled_total", "counter", "Generations stopped because the client went away.",
         cancelled_);
  metric("qwen3vl_requests_rejected_total", "counter", "Requests refused with 503 because the queue was full.",
         rejected_);
  metric("qwen3vl_prompt_tokens_total", "counter", "Prompt tokens processed (visual tokens included).",
         totals_.prompt_tokens);
  metric("qwen3vl_completion_tokens_total", "counter", "Tokens generated.", totals_.completion_tokens);
  metric("qwen3vl_visual_tokens_total", "counter", "Visual tokens in prompts.", totals_.visual_tokens);
  metric("qwen3vl_images_total", "counter", "Images in prompts.", totals_.images);
  metric("qwen3vl_videos_total", "counter", "Videos in prompts.", totals_.videos);
  metric("qwen3vl_media_seconds_total", "counter", "Time spent loading, decoding and resizing media.",
         totals_.media_seconds);
  metric("qwen3vl_vision_seconds_total", "counter", "Time spent in the vision tower (and scattering its output).",
         totals_.vision_seconds);
  metric("qwen3vl_prefill_seconds_total", "counter", "Time spent in prompt prefill.", totals_.prefill_seconds);
  metric("qwen3vl_decode_seconds_total", "counter", "Time spent decoding tokens.", totals_.decode_seconds);
  metric("qwen3vl_request_seconds_total", "counter", "Wall time of finished completions, queueing included.",
         totals_.total_seconds);
  metric("qwen3vl_requests_running", "gauge", "Generations running now.", g.running);
  metric("qwen3vl_requests_waiting", "gauge", "Requests waiting for a generation slot.", g.waiting);
  metric("qwen3vl_slots", "gauge", "Generation slots (--parallel).", g.slots);
  metric("qwen3vl_image_cache_hits_total", "counter", "Images whose vision output came from the cache.",
         g.cache.hits);
  metric("qwen3vl_image_cache_misses_total", "counter", "Images encoded by the vision tower.", g.cache.misses);
  metric("qwen3vl_image_cache_evictions_total", "counter", "Cache entries dropped to stay in budget.",
         g.cache.evictions);
  metric("qwen3vl_image_cache_entries", "gauge", "Vision outputs held in the cache.", g.cache.entries);
  metric("qwen3vl_image_cache_bytes", "gauge", "Bytes held by the image cache.", g.cache.bytes);
  metric("qwen3vl_image_cache_max_bytes", "gauge", "Image cache budget in bytes.", g.cache.max_bytes);
  metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", resident_memory_bytes());
  return out.str();
}

}  // namespace server
}  // namespace qwen3vl
