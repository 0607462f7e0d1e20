// ThreadPool: every task runs exactly once, on a valid thread index, for any task count (including more than the
// 65535 pieces one job holds); nested and concurrent calls complete (they run on the calling thread); an exception in
// tasks reaches the caller after the job has finished on every thread, and the pool stays usable.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"

namespace qwen3vl {
namespace {

TEST(ThreadPool, RunsEveryTaskOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t tasks : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{7}, int64_t{1000}, int64_t{200000}}) {
      std::vector<std::atomic<int>> seen(static_cast<size_t>(tasks));
      std::atomic<bool> bad_thread{false};
      pool.parallel_for(tasks, [&](int64_t task, int thread) {
        seen[static_cast<size_t>(task)].fetch_add(1);
        if (thread < 0 || thread >= threads) bad_thread = true;
      });
      for (int64_t t = 0; t < tasks; ++t) ASSERT_EQ(seen[t].load(), 1) << "task " << t << " of " << tasks;
      EXPECT_FALSE(bad_thread.load());
    }
  }
}

TEST(ThreadPool, ManyShortJobsInARow) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  for (int job = 0; job < 20000; ++job) pool.parallel_for(4, [&](int64_t task, int) { sum += task; });
  EXPECT_EQ(sum.load(), 20000 * 6);
}

TEST(ThreadPool, NestedAndConcurrentCallsComplete) {
  ThreadPool pool(2);
  std::atomic<int> inner{0};
  pool.parallel_for(4, [&](int64_t, int) { pool.parallel_for(3, [&](int64_t, int) { ++inner; }); });
  EXPECT_EQ(inner.load(), 12);

  std::atomic<int> count{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c)
    callers.emplace_back([&] {
      for (int job = 0; job < 500; ++job) pool.parallel_for(5, [&](int64_t, int) { ++count; });
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(count.load(), 3 * 500 * 5);
}

// Holds each task until `count` tasks have arrived, so that a job of `count` tasks runs one task on every thread
// (a thread inside a task cannot claim another). Gives up after a minute so that a broken pool fails instead of
// hanging; returns whether everyone arrived.
class Rendezvous {
 public:
  explicit Rendezvous(int count) : count_(count) {}
  bool arrive() {
    arrived_.fetch_add(1);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (arrived_.load() < count_)
      if (std::chrono::steady_clock::now() > give_up) return false;
    return true;
  }

 private:
  const int count_;
  std::atomic<int> arrived_{0};
};

// A correct job after a failed one: every thread takes part (so the busy flag was cleared) and the sum is right.
void expect_pool_usable(ThreadPool& pool) {
  Rendezvous all(pool.size());
  std::atomic<bool> met{true};
  std::atomic<int64_t> sum{0};
  pool.parallel_for(pool.size(), [&](int64_t task, int) {
    if (!all.arrive()) met = false;
    sum += task + 1;
  });
  EXPECT_TRUE(met.load()) << "the next job did not run on every thread";
  EXPECT_EQ(sum.load(), pool.size() * (pool.size() + 1) / 2);
  std::atomic<int64_t> big{0};
  pool.parallel_for(100000, [&](int64_t task, int) { big += task; });
  EXPECT_EQ(big.load(), int64_t{100000} * 99999 / 2);
}

TEST(ThreadPool, ExceptionsFromEveryThreadReachTheCaller) {
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    for (int round = 0; round < 3; ++round) {
      Rendezvous all(threads);
      std::mutex mutex;
      std::set<int> threw;
      std::atomic<int> finished{0};
      bool caught = false;
      try {
        pool.parallel_for(threads, [&](int64_t task, int thread) {
          EXPECT_TRUE(all.arrive());
          {
            std::lock_guard<std::mutex> lock(mutex);
            threw.insert(thread);
          }
          ++finished;
          throw std::runtime_error("task " + std::to_string(task));
        });
      } catch (const std::runtime_error& error) {
        caught = true;
        EXPECT_EQ(std::string(error.what()).rfind("task ", 0), 0u) << error.what();
      }
      EXPECT_TRUE(caught);
      EXPECT_EQ(finished.load(), threads);  // every task had finished before parallel_for returned
      EXPECT_EQ(threw.size(), static_cast<size_t>(threads));
      expect_pool_usable(pool);
    }
  }
}

TEST(ThreadPool, ExceptionsFromWorkersOnlyReachTheCaller) {
  ThreadPool pool(3);
  Rendezvous all(3);
  bool caught = false;
  try {
    pool.parallel_for(3, [&](int64_t, int thread) {
      EXPECT_TRUE(all.arrive());
      if (thread != 0) throw Error("worker " + std::to_string(thread));
    });
  } catch (const Error& error) {
    caught = true;
    EXPECT_EQ(std::string(error.what()).rfind("worker ", 0), 0u) << error.what();
  }
  EXPECT_TRUE(caught);
  expect_pool_usable(pool);
}

TEST(ThreadPool, ThrowingJobSkipsTheTasksNotYetStarted) {
  ThreadPool pool(2);
  std::atomic<int64_t> ran{0};
  EXPECT_THROW(pool.parallel_for(200000,
                                 [&](int64_t task, int) {
                                   ++ran;
                                   if (task == 0) throw std::runtime_error("first");
                                 }),
               std::runtime_error);
  EXPECT_LT(ran.load(), 200000);
  expect_pool_usable(pool);
}

TEST(ThreadPool, DefaultIsOneThreadPerProcessor) {
  EXPECT_GE(ThreadPool::default_threads(), 1);
  ThreadPool pool;
  EXPECT_EQ(pool.size(), ThreadPool::default_threads());
}

TEST(KernelDispatch, PicksASetThisProcessorRuns) {
  const ops::cpu::Kernels& best = ops::cpu::best_kernels();
  EXPECT_EQ(ops::cpu::kernels_for(best.isa), &best);
  EXPECT_EQ(ops::cpu::kernels_for(ops::cpu::Isa::Scalar), &ops::cpu::scalar_kernels());
  EXPECT_EQ(ops::cpu::parse_isa(ops::cpu::isa_name(best.isa)), best.isa);
  EXPECT_STREQ(best.name, ops::cpu::isa_name(best.isa));
  // An AVX-512 machine runs the AVX2 set too.
  if (best.isa == ops::cpu::Isa::Avx512) {
    EXPECT_NE(ops::cpu::kernels_for(ops::cpu::Isa::Avx2), nullptr);
  }
  EXPECT_THROW(ops::cpu::parse_isa("sse9"), Error);
}

}  // namespace
}  // namespace qwen3vl
