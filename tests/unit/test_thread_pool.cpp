// ThreadPool: every task runs exactly once, on a valid thread index, for any task count (including more than the
// 65535 pieces one job holds); nested and concurrent calls complete (they run on the calling thread).
#include <gtest/gtest.h>

#include <atomic>
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
