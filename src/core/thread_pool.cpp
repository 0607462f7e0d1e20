#include "core/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <chrono>

namespace qwen3vl {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// How long an idle worker keeps polling for the next job before it sleeps: longer than the gaps between the ops
// of one forward pass, far shorter than anything a person notices.
constexpr auto kSpin = std::chrono::microseconds(300);

constexpr uint64_t kMaxPieces = 0xffff;

inline bool claimable(uint64_t claim) { return (claim & 0xffff) < ((claim >> 16) & 0xffff); }

}  // namespace

int ThreadPool::default_threads() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware > 0 ? static_cast<int>(hardware) : 1;
}

ThreadPool::ThreadPool(int threads) : size_(threads > 0 ? threads : default_threads()) {
  workers_.reserve(static_cast<size_t>(size_ - 1));
  for (int i = 1; i < size_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::drain(int thread) {
  for (;;) {
    uint64_t claim = claim_.load(std::memory_order_acquire);
    if (!claimable(claim)) return;
    if (!claim_.compare_exchange_weak(claim, claim + 1, std::memory_order_acq_rel)) continue;
    const int64_t piece = static_cast<int64_t>(claim & 0xffff);
    const int64_t end = std::min(tasks_, (piece + 1) * group_);
    // Caught here so that the piece is counted as done whatever happens: the caller waits for every piece before
    // its frame (which owns fn_ / context_) may unwind.
    if (!failed_.load(std::memory_order_relaxed)) {
      try {
        for (int64_t task = piece * group_; task < end; ++task) fn_(context_, task, thread);
      } catch (...) {
        record_failure(std::current_exception());
      }
    }
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::record_failure(std::exception_ptr error) {
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (!error_) error_ = std::move(error);
  failed_.store(true, std::memory_order_relaxed);
}

void ThreadPool::finish_job() {
  std::exception_ptr error;
  if (failed_.load(std::memory_order_relaxed)) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    error = std::move(error_);
    error_ = nullptr;
    failed_.store(false, std::memory_order_relaxed);
  }
  busy_flag_.store(false, std::memory_order_release);
  if (error) std::rethrow_exception(error);
}

void ThreadPool::run(int64_t tasks, TaskFn fn, void* context) {
  bool expected = false;
  if (size_ == 1 || tasks == 1 || !busy_flag_.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
    for (int64_t task = 0; task < tasks; ++task) fn(context, task, 0);
    return;
  }
  fn_ = fn;
  context_ = context;
  tasks_ = tasks;
  group_ = (tasks + static_cast<int64_t>(kMaxPieces) - 1) / static_cast<int64_t>(kMaxPieces);
  const uint64_t pieces = static_cast<uint64_t>((tasks + group_ - 1) / group_);
  done_.store(0, std::memory_order_relaxed);
  job_ = job_ + 1;
  claim_.store(static_cast<uint64_t>(job_) << 32 | pieces << 16);  // seq_cst: pairs with the sleepers_ check
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    wake_.notify_all();
  }
  drain(0);
  while (done_.load(std::memory_order_acquire) < static_cast<int64_t>(pieces)) cpu_relax();
  finish_job();
}

void ThreadPool::worker(int index) {
  for (;;) {
    const auto until = std::chrono::steady_clock::now() + kSpin;
    int polls = 0;
    while (!claimable(claim_.load(std::memory_order_acquire)) && !stop_.load(std::memory_order_relaxed)) {
      cpu_relax();
      if (++polls % 64 == 0 && std::chrono::steady_clock::now() > until) break;
    }
    if (!claimable(claim_.load()) && !stop_.load()) {
      std::unique_lock<std::mutex> lock(sleep_mutex_);
      sleepers_.fetch_add(1);  // seq_cst: either run() sees a sleeper or this thread sees its job below
      wake_.wait(lock, [&] { return claimable(claim_.load()) || stop_.load(); });
      sleepers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    drain(index);
  }
}

}  // namespace qwen3vl
