// The decode loop allocates nothing once warm: after a prefill and a few decode steps, further single-token
// forwards of the text decoder (with a thread pool) make no operator new call on any thread and grow no kernel
// scratch buffer. Counts every operator new of the test binary while a flag is set (nothing else runs then).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "core/thread_pool.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/text_decoder.h"
#include "model/text_weights.h"
#include "model/weight_convert.h"
#include "ops/cpu/kernels.h"
#include "memory_probe.h"
#include "test_util.h"

// Not under a sanitizer: its runtime defines operator new itself (TSan's statically, so a second definition does
// not link) and owns the heap, so there is nothing of ours to count there.
namespace {
std::atomic<bool> counting{false};
std::atomic<int64_t> allocations{0};
}  // namespace

#if !QWEN3VL_TEST_HEAP_INSTRUMENTED
namespace {
void* counted_new(size_t size) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(size_t size) { return counted_new(size); }
void* operator new[](size_t size) { return counted_new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
#endif

namespace qwen3vl {
namespace {

void check_decode_allocates_nothing(const std::string& checkpoint, int threads, DType format = DType::U8) {
  SCOPED_TRACE(checkpoint + " threads=" + std::to_string(threads) + " " + dtype_name(format));
  const std::string dir = testing::model_fixture(checkpoint);
  const ModelConfig config = load_model_config(dir + "/config.json");
  const TensorStore store = TensorStore::open_dir(dir);
  TextWeights weights = bind_text_weights(store, config);
  ThreadPool pool(threads);
  ConvertedWeights converted;  // U8: the weights as shipped
  if (format != DType::U8) convert_text_weights(weights, store, format, &pool, converted);
  const TextDecoder decoder(config, weights, ops::Context{&pool, nullptr});
  const int64_t hidden = config.text_config.hidden_size;

  const std::vector<int32_t> prompt = {5, 17, 33, 2, 9, 11, 40};
  const int64_t n = static_cast<int64_t>(prompt.size()), steps = 16;
  KVCache cache = decoder.make_cache(n + steps);
  // The cache holds the activation dtype: bf16 values of a bf16 model in half the bytes of float.
  EXPECT_EQ(cache.dtype(), checkpoint.find("bf16") != std::string::npos ? DType::BF16 : DType::F32);
  DecoderWorkspace work;
  std::vector<float> embeds(static_cast<size_t>(n * hidden)), logits;
  decoder.embed(prompt.data(), n, embeds.data());
  decoder.forward(embeds.data(), n, text_positions(0, n), cache, work, LogitsRows::Last, logits);
  std::vector<MropePositions> positions;
  for (int64_t s = 0; s < steps; ++s) positions.push_back(text_positions(n + s, 1));

  int64_t scratch_before = 0;
  for (int64_t s = 0; s < steps; ++s) {
    if (s == steps / 2) {  // warm: count from here
      scratch_before = ops::cpu::scratch_allocations();
      allocations = 0;
      counting = true;
    }
    const int32_t token = static_cast<int32_t>(s % 50 + 1);
    decoder.embed(&token, 1, embeds.data());
    decoder.forward(embeds.data(), 1, positions[static_cast<size_t>(s)], cache, work, LogitsRows::Last, logits);
  }
  counting = false;
  if (!testing::kHeapIsInstrumented) {  // a sanitizer's operator new is not ours to count
    EXPECT_EQ(allocations.load(), 0) << "operator new calls in warm decode steps";
  }
  // With one thread the scratch use is deterministic; with more, a worker may run its first task of a kind late.
  if (threads == 1) {
    EXPECT_EQ(ops::cpu::scratch_allocations() - scratch_before, 0) << "scratch growth";
  }
}

TEST(DecodeLoop, AllocatesNothingOnceWarm) {
  for (const char* checkpoint : {"tiny-bf16-untied", "tiny-fp32-tied"})
    for (int threads : {1, 2}) check_decode_allocates_nothing(checkpoint, threads);
}

TEST(DecodeLoop, AllocatesNothingOnceWarmWithQuantizedWeights) {
  for (DType format : {DType::Q8, DType::Q4})
    for (int threads : {1, 2}) check_decode_allocates_nothing("tiny-bf16-untied", threads, format);
}

}  // namespace
}  // namespace qwen3vl
