// The threads that run generations: a fixed set of `parallel` workers, one per admission slot (admission.h), so
// per-thread engine state (the CPU kernels' thread-local scratch buffers, allocator arenas) exists `parallel` times
// however many HTTP threads there are. HTTP threads only parse, wait and relay. This is also where a batching
// decoder plugs in later: it would take the admitted jobs together instead of one per worker.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qwen3vl {
namespace server {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();  // runs what was submitted, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void submit(std::function<void()> task);

 private:
  void loop();

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace server
}  // namespace qwen3vl
