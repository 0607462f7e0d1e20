// A fixed set of worker threads that the forward passes share (created once per loaded model and passed to the
// model code explicitly, never a global). parallel_for splits a loop of tasks over the workers and the calling
// thread; it returns when every task has run.
//
// Workers spin briefly after each job (the decoder issues hundreds of short jobs per token) and then sleep on a
// condition variable, so an idle pool costs nothing. A parallel_for issued while the pool is busy (another request
// on another thread, or a nested call from inside a task) runs its tasks on the calling thread alone: correct,
// never deadlocks, and the busy job keeps the cores anyway. No allocation per call.
//
// A task that throws does not end the process: the job still finishes on every thread (the pieces not yet started
// are skipped), and parallel_for rethrows the first exception on the calling thread once no thread runs a task of
// it any more. The pool stays usable.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace qwen3vl {

class ThreadPool {
 public:
  // threads >= 1 is the total including the calling thread (threads - 1 workers are started); 0 means
  // default_threads().
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  // Processors this process may run on (sched_getaffinity), at least 1.
  static int default_threads();

  // Runs fn(task, thread) for every task in [0, tasks); `thread` in [0, size()) names the executing thread (for
  // per-thread scratch). Tasks are handed out one at a time, so uneven tasks balance themselves. If tasks throw,
  // the first exception is rethrown here after every thread has left the job.
  template <typename Fn>
  void parallel_for(int64_t tasks, Fn&& fn) {
    if (tasks <= 0) return;
    using F = std::remove_reference_t<Fn>;
    run(tasks, [](void* f, int64_t task, int thread) { (*static_cast<F*>(f))(task, thread); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using TaskFn = void (*)(void*, int64_t, int);
  void run(int64_t tasks, TaskFn fn, void* context);
  void worker(int index);
  void drain(int thread);  // claims and runs tasks of the current job until none is left
  void record_failure(std::exception_ptr error);
  void finish_job();  // clears the busy flag; rethrows the job's first exception, if any

  int size_ = 1;
  std::vector<std::thread> workers_;
  std::atomic<bool> busy_flag_{false};  // set while a job runs
  std::atomic<bool> stop_{false};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
  // The current job. `claim_` packs (job number << 32 | pieces << 16 | next piece): a worker claims piece p with one
  // compare-exchange, which can only succeed while that job is current, and a job stays current until all its pieces
  // are done, so fn_ / context_ cannot change under a claimed piece. Pieces are groups of `group_` tasks (at most
  // 65535 pieces).
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_{0};  // pieces finished
  uint32_t job_ = 0;
  TaskFn fn_ = nullptr;
  void* context_ = nullptr;
  int64_t tasks_ = 0;
  int64_t group_ = 1;
  // The first exception of the current job; once `failed_` is set, pieces claimed later are counted as done
  // without running.
  std::mutex error_mutex_;
  std::exception_ptr error_;
  std::atomic<bool> failed_{false};
};

}  // namespace qwen3vl
