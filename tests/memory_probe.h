// Process memory for the tests that bound it: the resident set and its high-water mark from /proc/self/status,
// and the peak a piece of work adds, measured in a forked child so other tests' allocations do not count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <type_traits>

namespace qwen3vl {
namespace testing {

// This process's resident memory (VmRSS) and its peak (VmHWM), in KiB; -1 where /proc/self/status lacks them.
struct MemoryUse {
  int64_t rss_kib = -1, peak_kib = -1;
};
MemoryUse memory_use();
// Sets the peak (VmHWM) to the current resident size; false where the kernel does not allow it.
bool reset_peak_memory();

// 1 in ASan and TSan builds, whose allocators own operator new and add memory of their own to every block.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define QWEN3VL_TEST_HEAP_INSTRUMENTED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define QWEN3VL_TEST_HEAP_INSTRUMENTED 1
#endif
#endif
#ifndef QWEN3VL_TEST_HEAP_INSTRUMENTED
#define QWEN3VL_TEST_HEAP_INSTRUMENTED 0
#endif
constexpr bool kHeapIsInstrumented = QWEN3VL_TEST_HEAP_INSTRUMENTED;

struct PeakGrowth {
  bool measured = false;  // false where /proc/self/clear_refs cannot reset the peak, the work threw, or the
                          // heap is instrumented (kHeapIsInstrumented)
  int64_t bytes = 0;      // how far the peak rose over the resident size right before the work
};
// Runs `work` here, with the peak reset first.
PeakGrowth peak_growth_of(const std::function<void()>& work);

// Forks a child that runs `fill` and sends back the `size` bytes at `bytes` (its copy of them), which then land in
// `bytes` here. False, with `bytes` unspecified, when the child died before sending them all.
bool fill_in_child(void* bytes, size_t size, const std::function<void()>& fill);

// What the work wrote into its Payload (a small struct of plain fields), with the peak it added.
template <typename Payload>
struct ChildPeak : Payload {
  bool reported = false;  // false when the child died: then everything else is left at its default
  PeakGrowth peak;
};

// Runs `work(payload)` in a forked child and measures the peak it adds there: the child starts with this process's
// pages, and only what the work allocates counts.
template <typename Payload, typename Work>
ChildPeak<Payload> peak_in_child(Work work) {
  static_assert(std::is_trivially_copyable<Payload>::value, "the payload comes back through a pipe as bytes");
  ChildPeak<Payload> result{};
  Payload& payload = result;
  if (!fill_in_child(&result, sizeof result, [&] { result.peak = peak_growth_of([&] { work(payload); }); }))
    return {};
  result.reported = true;
  return result;
}

}  // namespace testing
}  // namespace qwen3vl
