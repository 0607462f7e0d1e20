#include "engine/bench_metrics.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "ops/quant.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define QWEN3VL_BENCH_X86 1
#endif

namespace qwen3vl {

namespace {

double matmul(double m, double n, double k) { return 2.0 * m * n * k; }

// Block formats: quants and scales; 0 for a format with no known size.
double matrix_bytes(const WeightMatrix& m) {
  if (is_quantized(m.dtype)) return static_cast<double>(quant_matrix_bytes(m.dtype, m.rows, m.cols));
  return static_cast<double>(dtype_size(m.dtype)) * static_cast<double>(m.rows) * static_cast<double>(m.cols);
}
double vector_bytes(const WeightVector& v) {
  return static_cast<double>(dtype_size(v.dtype)) * static_cast<double>(v.size);
}

#ifdef QWEN3VL_BENCH_X86
// Compiled for these ISAs by attribute only (intrinsics, no inline library code), run only when the kernel set in
// use says the processor has them. 12 independent accumulators hide the instruction latency.
__attribute__((target("avx512f,avx512bf16"))) float bf16_dot_loop(int64_t iterations) {
  __m512 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm512_set1_ps(0.0f);
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3c00);
  for (int64_t i = 0; i < iterations; ++i)
    for (int j = 0; j < 12; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
  __m512 sum = acc[0];
  for (int j = 1; j < 12; ++j) sum = _mm512_add_ps(sum, acc[j]);
  float lanes[16];
  _mm512_storeu_ps(lanes, sum);
  return lanes[0];
}

__attribute__((target("avx2,fma"))) float fma_loop(int64_t iterations) {
  __m256 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm256_set1_ps(0.0f);
  const __m256 a = _mm256_set1_ps(1.0f), b = _mm256_set1_ps(1e-9f);
  for (int64_t i = 0; i < iterations; ++i)
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_ps(a, b, acc[j]);
  __m256 sum = acc[0];
  for (int j = 1; j < 12; ++j) sum = _mm256_add_ps(sum, acc[j]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  return lanes[0];
}
#endif

}  // namespace

double measure_peak_flops(ThreadPool& pool, const char* kind, int passes) {
#ifdef QWEN3VL_BENCH_X86
  const std::string k = kind ? kind : "";
  double flop_per_iteration = 0;
  if (k == "bf16") flop_per_iteration = 12.0 * 64;
  else if (k == "fma") flop_per_iteration = 12.0 * 16;
  else return 0.0;
  constexpr int64_t kIterations = 16'000'000;
  const int threads = pool.size();
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int pass = 0; pass < std::max(passes, 1); ++pass) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(threads, [&](int64_t, int) {
      const float r = k == "bf16" ? bf16_dot_loop(kIterations) : fma_loop(kIterations);
      sink.fetch_add(static_cast<uint64_t>(r), std::memory_order_relaxed);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, flop_per_iteration * static_cast<double>(kIterations) * threads / seconds);
  }
  return best;
#else
  (void)pool, (void)kind, (void)passes;
  return 0.0;
#endif
}

double text_forward_flops(const ModelConfig& config, int64_t n, int64_t past) {
  const TextConfig& c = config.text_config;
  const double tokens = static_cast<double>(n), h = static_cast<double>(c.hidden_size);
  const double d = static_cast<double>(c.head_dim), heads = static_cast<double>(c.num_attention_heads);
  const double q = heads * d, kv = static_cast<double>(c.num_key_value_heads) * d;
  double per_layer = matmul(tokens, q, h) + 2 * matmul(tokens, kv, h) + matmul(tokens, h, q);
  if (config.is_moe()) {
    const double im = static_cast<double>(c.moe_intermediate_size);
    per_layer += matmul(tokens, static_cast<double>(c.num_experts), h) +
                 static_cast<double>(c.num_experts_per_tok) * (matmul(tokens, 2 * im, h) + matmul(tokens, h, im));
  } else {
    const double im = static_cast<double>(c.intermediate_size);
    per_layer += matmul(tokens, 2 * im, h) + matmul(tokens, h, im);
  }
  // Query row i (0-based among the new ones) sees past + i + 1 keys.
  const double pairs = tokens * static_cast<double>(past) + tokens * (tokens + 1) / 2;
  per_layer += 2 * (2 * d * pairs) * heads;
  return per_layer * static_cast<double>(c.num_hidden_layers) + (n > 0 ? matmul(1, c.vocab_size, h) : 0.0);
}

double vision_forward_flops(const ModelConfig& config, const std::vector<GridTHW>& grids) {
  const VisionConfig& c = config.vision_config;
  const double dim = static_cast<double>(c.hidden_size), im = static_cast<double>(c.intermediate_size);
  const double head_dim = dim / static_cast<double>(c.num_heads);
  const double patch_in =
      static_cast<double>(c.in_channels * c.temporal_patch_size * c.patch_size * c.patch_size);
  const double merged_dim = dim * static_cast<double>(c.spatial_merge_size * c.spatial_merge_size);
  double patches = 0, pairs = 0;
  for (const GridTHW& g : grids) {
    const double slice = static_cast<double>(g.h * g.w);
    patches += static_cast<double>(g.t) * slice;
    pairs += static_cast<double>(g.t) * slice * slice;
  }
  const double merged = patches / static_cast<double>(c.spatial_merge_size * c.spatial_merge_size);
  const double per_block = matmul(patches, 3 * dim, dim) + matmul(patches, dim, dim) + matmul(patches, im, dim) +
                           matmul(patches, dim, im) + 2 * (2 * head_dim * pairs) * static_cast<double>(c.num_heads);
  const double mergers = static_cast<double>(1 + c.deepstack_visual_indexes.size()) *
                         (matmul(merged, merged_dim, merged_dim) +
                          matmul(merged, static_cast<double>(c.out_hidden_size), merged_dim));
  return matmul(patches, dim, patch_in) + per_block * static_cast<double>(c.depth) + mergers;
}

double decode_weight_bytes(const ModelConfig& config, const TextWeights& w) {
  double bytes = 0;
  bool known = true;
  auto add = [&](const WeightMatrix& m, double share = 1.0) {
    const double b = matrix_bytes(m);
    if (b == 0 && m.rows * m.cols > 0) known = false;
    bytes += share * b;
  };
  for (const TextLayerWeights& l : w.layers) {
    for (const WeightMatrix* m : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj})
      add(*m);
    for (const WeightVector* v : {&l.input_layernorm, &l.q_norm, &l.k_norm, &l.post_attention_layernorm})
      bytes += vector_bytes(*v);
    if (!l.moe.empty()) {
      add(l.moe.gate);
      const double share = static_cast<double>(config.text_config.num_experts_per_tok) /
                           static_cast<double>(l.moe.num_experts());
      for (int64_t e = 0; e < l.moe.num_experts(); ++e) {
        add(l.moe.gate_up_proj[static_cast<size_t>(e)], share);
        add(l.moe.down_proj[static_cast<size_t>(e)], share);
      }
    }
  }
  bytes += vector_bytes(w.norm);
  add(w.lm_head);
  bytes += static_cast<double>(dtype_size(w.embed_tokens.dtype)) * static_cast<double>(w.embed_tokens.cols);
  return known ? bytes : 0.0;
}

double measure_read_bandwidth(ThreadPool& pool, int64_t bytes, int passes) {
  const int64_t words = std::max<int64_t>(bytes / 8, 1 << 16);
  std::unique_ptr<uint64_t[]> buffer(new uint64_t[static_cast<size_t>(words)]);
  constexpr int64_t kChunk = 1 << 19;  // 4 MiB of words per task
  const int64_t tasks = (words + kChunk - 1) / kChunk;
  // Fill in parallel (first touch by the threads that read it later).
  pool.parallel_for(tasks, [&](int64_t task, int) {
    const int64_t end = std::min(words, (task + 1) * kChunk);
    for (int64_t i = task * kChunk; i < end; ++i) buffer[static_cast<size_t>(i)] = static_cast<uint64_t>(i) * 0x9e37u;
  });
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int pass = 0; pass < std::max(passes, 1); ++pass) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(tasks, [&](int64_t task, int) {
      const uint64_t* p = buffer.get() + task * kChunk;
      const int64_t count = std::min(words, (task + 1) * kChunk) - task * kChunk;
      uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 8 <= count; i += 8)
        for (int j = 0; j < 8; ++j) acc[j] += p[i + j];
      for (; i < count; ++i) acc[0] += p[i];
      uint64_t total = 0;
      for (uint64_t a : acc) total += a;
      sink.fetch_add(total, std::memory_order_relaxed);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(words * 8) / seconds);
  }
  if (sink.load() == 1) best += 0.0;  // keeps the sums observable
  return best;
}

}  // namespace qwen3vl
