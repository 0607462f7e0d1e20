// The op interface over the CPU kernel sets: picks the set (once, from cpuid), splits each op into ranges over the
// context's thread pool, and owns the per-thread scratch memory.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/parallel_ranges.h"
#include "ops/ops.h"
#include "ops/lora.h"

namespace qwen3vl {
namespace ops {
namespace cpu {
namespace {

#if defined(__x86_64__) || defined(__i386__)
// The OS saves the vector registers named by `mask` (XCR0) on context switches; only valid with OSXSAVE.
bool os_saves(uint64_t mask) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((static_cast<uint64_t>(hi) << 32 | lo) & mask) == mask;
}

// F16C from CPUID leaf 1 (clang 14's __builtin_cpu_supports does not know "f16c").
bool has_f16c() {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

// Scalar set: the reference, whole ops on the calling thread.
const Kernels kScalar = [] {
  Kernels k;
  k.isa = Isa::Scalar;
  k.name = "scalar";
  k.threaded = false;
  k.rms_norm = reference::rms_norm;
  k.layer_norm = reference::layer_norm;
  k.gelu_tanh = reference::gelu_tanh;
  k.gelu_erf = reference::gelu_erf;
  k.add_inplace = reference::add_inplace;
  k.silu_mul = reference::silu_mul;
  k.apply_rotary = reference::apply_rotary;
  return k;
}();

const Kernels& kernels_of(const Context& ctx) { return ctx.kernels ? *ctx.kernels : best_kernels(); }

int threads_of(const Context& ctx) { return ctx.pool ? ctx.pool->size() : 1; }

// Element-wise ops are split only when large enough to pay for the hand-off.
constexpr int64_t kMinElements = 1 << 15;

}  // namespace

Isa detect_isa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vnni") &&
                      __builtin_cpu_supports("fma") && has_f16c();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
  if (avx512 && avx512_kernels() && os_saves(0xe6)) return Isa::Avx512;  // XMM | YMM | opmask | ZMM state
  if (avx2 && avx2_kernels() && os_saves(0x6)) return Isa::Avx2;
#endif
  return Isa::Scalar;
}

const Kernels& scalar_kernels() { return kScalar; }

const Kernels* avx2_kernels() {
  static const Kernels kernels = [] {
    Kernels k;
    k.isa = Isa::Avx2;
    k.name = "avx2";
    return fill_avx2_kernels(k) ? k : Kernels{};
  }();
  return kernels.linear_columns ? &kernels : nullptr;
}

const Kernels* avx512_kernels() {
  static const Kernels kernels = [] {
    Kernels k;
    k.isa = Isa::Avx512;
    k.name = "avx512";
    return fill_avx512_kernels(k) ? k : Kernels{};
  }();
  return kernels.linear_columns ? &kernels : nullptr;
}

const Kernels* kernels_for(Isa isa) {
  static const Isa best = detect_isa();
  if (isa == Isa::Scalar) return &kScalar;
  if (isa == Isa::Avx2) return best == Isa::Scalar ? nullptr : avx2_kernels();
  return best == Isa::Avx512 ? avx512_kernels() : nullptr;
}

const Kernels& best_kernels() {
  static const Kernels* best = kernels_for(detect_isa());
  return *best;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    case Isa::Scalar: break;
  }
  return "scalar";
}

Isa parse_isa(const char* name) {
  for (Isa isa : {Isa::Avx512, Isa::Avx2, Isa::Scalar})
    if (std::strcmp(name, isa_name(isa)) == 0) return isa;
  throw_error("unknown instruction set '", name, "' (expected avx512, avx2 or scalar)");
}

namespace {
std::atomic<int64_t> scratch_allocation_count{0};
}  // namespace

int64_t scratch_allocations() { return scratch_allocation_count.load(); }

void* thread_scratch(int slot, size_t bytes) {
  struct Buffer {
    void* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffers[8];
  Buffer& b = buffers[slot];
  if (b.size < bytes) {
    std::free(b.data);
    // Doubling from 256 KiB: a buffer that grows with the context (attention scores) is rarely reallocated.
    b.size = std::max({bytes, 2 * b.size, size_t{1} << 18});
    b.size = (b.size + 63) / 64 * 64;
    b.data = std::aligned_alloc(64, b.size);
    if (!b.data) throw std::bad_alloc();
    scratch_allocation_count.fetch_add(1);
  }
  return b.data;
}

}  // namespace cpu

// ---------------------------------------------------------------------------------------------------------------
// The ops.

namespace {

// The job of one output of linear / linear_group: the bias in float in `bias_scratch` (null: none).
cpu::LinearJob linear_job(const float* x, int64_t n, const LinearOutput& out, Precision precision,
                          float* bias_scratch) {
  cpu::LinearJob job;
  job.x = x;
  job.n = n;
  job.w = out.w;
  job.y = out.y;
  job.precision = precision;
  if (out.bias) {
    convert_to_f32(out.bias->dtype, out.bias->data, bias_scratch, static_cast<size_t>(out.w->rows));
    job.bias = bias_scratch;
  }
  return job;
}

// Sets job.bf16_dot and packs x for the kernels (shared by every job of a group: same x, weight format and cols).
// bf16 dot products only where they are exact: every input a bf16 value (the check and the packing of x are split
// over the threads when x is large).
void prepare_x(const Context& ctx, const cpu::Kernels& k, cpu::LinearJob& job) {
  const float* x = job.x;
  const int64_t n = job.n, cols = job.w->cols, elements = n * cols;
  if (k.linear_bf16_capable(job)) {
    if (elements < cpu::kMinElements * 4 || cpu::threads_of(ctx) == 1) {
      job.bf16_dot = k.all_bf16(x, elements);
    } else {
      std::atomic<bool> exact{true};
      cpu::for_ranges(ctx, n, 1, std::max<int64_t>(1, cpu::kMinElements / cols), [&](int64_t r0, int64_t r1) {
        if (exact.load(std::memory_order_relaxed) && !k.all_bf16(x + r0 * cols, (r1 - r0) * cols)) exact = false;
      });
      job.bf16_dot = exact.load();
    }
  }
  const size_t bytes = k.linear_prepare_bytes(job);
  if (bytes) {
    void* packed = cpu::thread_scratch(3, bytes);  // slot 3: packed x
    const int64_t rows_per_piece = std::max<int64_t>(1, cpu::kMinElements / cols);
    cpu::for_ranges(elements < cpu::kMinElements * 4 ? Context{} : ctx, n, k.linear_row_granule(job), rows_per_piece,
               [&](int64_t r0, int64_t r1) { k.linear_pack_x(job, packed, r0, r1); });
    job.packed_x = packed;
  }
}

// The dtypes the kernels read: weight matrices F32 / F16 / BF16 / Q8 / Q4, vectors (norms, biases) F32 / F16 / BF16.
// The loaders bind nothing else (model/weight_convert.h); a caller that did would otherwise get a kernel's fallback
// load of the wrong width, so it is an error here, before any kernel runs.
bool is_vector_dtype(DType dtype) { return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16; }

void check_vector(const WeightVector& v, const char* what) {
  if (!is_vector_dtype(v.dtype)) throw_error("internal: ", what, " of dtype ", dtype_name(v.dtype));
}

void check_matrix(const WeightMatrix& w) {
  if (!is_vector_dtype(w.dtype) && w.dtype != DType::Q8 && w.dtype != DType::Q4)
    throw_error("internal: linear with a weight of dtype ", dtype_name(w.dtype));
}

// Whether the outputs can share one packed x and one hand-off: same cols, weight format and layout.
bool share_x(const LinearOutput* outputs, int count) {
  for (int i = 1; i < count; ++i) {
    const WeightMatrix& a = *outputs[0].w;
    const WeightMatrix& b = *outputs[i].w;
    if (a.cols != b.cols || a.dtype != b.dtype || a.layout != b.layout) return false;
  }
  return true;
}

}  // namespace

void linear(const Context& ctx, const float* x, int64_t n, const WeightMatrix& w, float* y, Precision precision,
            const WeightVector* bias) {
  const LinearOutput out{&w, y, bias};
  linear_group(ctx, x, n, &out, 1, precision);
}

namespace {

// The LoRA terms of each output (ops/lora.h), their two small matmuls on the same pool and kernels in float.
void apply_lora(const Context& ctx, const float* x, int64_t n, const LinearOutput* outputs, int count,
                Precision precision) {
  for (int i = 0; i < count; ++i) {
    const LinearOutput& out = outputs[i];
    if (out.w->lora.count == 0) continue;
    float* scratch = static_cast<float*>(  // slot 4: LoRA intermediates
        cpu::thread_scratch(4, lora::scratch_floats(n, *out.w) * sizeof(float)));
    lora::apply(x, n, *out.w, out.bias, precision, scratch,
                [&ctx](const float* in, int64_t rows, const WeightMatrix& m, float* result) {
                  linear(ctx, in, rows, m, result, Precision::F32);
                },
                out.y);
  }
}

}  // namespace

void linear_group(const Context& ctx, const float* x, int64_t n, const LinearOutput* outputs, int count,
                  Precision precision) {
  for (int i = 0; i < count; ++i) {
    check_matrix(*outputs[i].w);
    if (outputs[i].bias) check_vector(*outputs[i].bias, "linear bias");
    lora::check_terms(*outputs[i].w);
  }
  const cpu::Kernels& k = cpu::kernels_of(ctx);
  if (!k.linear_columns) {
    for (int i = 0; i < count; ++i) reference::linear(x, n, *outputs[i].w, outputs[i].y, precision, outputs[i].bias);
    return;
  }
  if (!share_x(outputs, count)) {
    for (int i = 0; i < count; ++i) linear_group(ctx, x, n, outputs + i, 1, precision);
    return;
  }
  if (n <= 0 || count <= 0) return;
  constexpr int kMaxGroup = 4;
  if (count > kMaxGroup) throw_error("internal: linear_group of ", count, " outputs (at most ", kMaxGroup, ")");
  int64_t bias_rows = 0;
  for (int i = 0; i < count; ++i) bias_rows += outputs[i].bias ? outputs[i].w->rows : 0;
  float* bias_scratch =  // slot 2: the biases in float
      bias_rows ? static_cast<float*>(cpu::thread_scratch(2, static_cast<size_t>(bias_rows) * sizeof(float))) : nullptr;
  cpu::LinearJob jobs[kMaxGroup];
  int64_t units[kMaxGroup + 1] = {0};  // units[i]: the first unit of output i in the shared split
  for (int i = 0; i < count; ++i) {
    jobs[i] = linear_job(x, n, outputs[i], precision, bias_scratch);
    if (outputs[i].bias) bias_scratch += outputs[i].w->rows;
  }
  prepare_x(ctx, k, jobs[0]);
  const int64_t granule = k.linear_granule(jobs[0]);
  for (int i = 0; i < count; ++i) {
    jobs[i].bf16_dot = jobs[0].bf16_dot;
    jobs[i].packed_x = jobs[0].packed_x;
    units[i + 1] = units[i] + (outputs[i].w->rows + granule - 1) / granule;
  }
  // One hand-off for all outputs: pieces of whole granules of the outputs' rows laid end to end, at least ~64K
  // multiply-adds each so that tiny matrices stay on one thread.
  const int64_t min_units = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, n * outputs[0].w->cols) /
                                                     granule);
  cpu::for_ranges(ctx, units[count], 1, min_units, [&](int64_t u0, int64_t u1) {
    for (int i = 0; i < count; ++i) {
      const int64_t a = std::max(u0, units[i]), b = std::min(u1, units[i + 1]);
      if (a < b)
        k.linear_columns(jobs[i], (a - units[i]) * granule, std::min(outputs[i].w->rows, (b - units[i]) * granule));
    }
  });
  apply_lora(ctx, x, n, outputs, count, precision);
}

void rms_norm(const Context& ctx, const float* x, int64_t rows, int64_t dim, const WeightVector& weight, float eps,
              float* out, Precision precision) {
  check_vector(weight, "rms_norm weight");
  const cpu::Kernels& k = cpu::kernels_of(ctx);
  const int64_t min_rows = std::max<int64_t>(1, cpu::kMinElements / std::max<int64_t>(dim, 1));
  cpu::for_ranges(k.threaded ? ctx : Context{}, rows, 1, min_rows, [&](int64_t r0, int64_t r1) {
    k.rms_norm(x + r0 * dim, r1 - r0, dim, weight, eps, out + r0 * dim, precision);
  });
}

void layer_norm(const Context& ctx, const float* x, int64_t rows, int64_t dim, const WeightVector& weight,
                const WeightVector& bias, float eps, float* out, Precision precision) {
  check_vector(weight, "layer_norm weight");
  check_vector(bias, "layer_norm bias");
  const cpu::Kernels& k = cpu::kernels_of(ctx);
  const int64_t min_rows = std::max<int64_t>(1, cpu::kMinElements / std::max<int64_t>(dim, 1));
  cpu::for_ranges(k.threaded ? ctx : Context{}, rows, 1, min_rows, [&](int64_t r0, int64_t r1) {
    k.layer_norm(x + r0 * dim, r1 - r0, dim, weight, bias, eps, out + r0 * dim, precision);
  });
}

namespace {
template <typename Fn>
void elementwise(const Context& ctx, const cpu::Kernels& k, size_t count, Fn&& fn) {
  cpu::for_ranges(k.threaded ? ctx : Context{}, static_cast<int64_t>(count), 64, cpu::kMinElements,
             [&](int64_t i0, int64_t i1) { fn(static_cast<size_t>(i0), static_cast<size_t>(i1 - i0)); });
}
}  // namespace

void gelu_tanh(const Context& ctx, const float* x, size_t count, float* out, Precision precision) {
  const cpu::Kernels& k = cpu::kernels_of(ctx);
  elementwise(ctx, k, count, [&](size_t i, size_t c) { k.gelu_tanh(x + i, c, out + i, precision); });
}

void gelu_erf(const Context& ctx, const float* x, size_t count, float* out, Precision precision) {
  const cpu::Kernels& k = cpu::kernels_of(ctx);
  elementwise(ctx, k, count, [&](size_t i, size_t c) { k.gelu_erf(x + i, c, out + i, precision); });
}

void add_inplace(const Context& ctx, float* x, const float* y, size_t count, Precision precision) {
  const cpu::Kernels& k = cpu::kernels_of(ctx);
  elementwise(ctx, k, count, [&](size_t i, size_t c) { k.add_inplace(x + i, y + i, c, precision); });
}

void silu_mul(const Context& ctx, const float* gate, const float* up, size_t count, float* out, Precision precision) {
  const cpu::Kernels& k = cpu::kernels_of(ctx);
  elementwise(ctx, k, count, [&](size_t i, size_t c) { k.silu_mul(gate + i, up + i, c, out + i, precision); });
}

void apply_rotary(const Context& ctx, float* x, int64_t rows, int64_t heads, int64_t head_dim, const float* cos,
                  const float* sin, Precision precision) {
  const cpu::Kernels& k = cpu::kernels_of(ctx);
  const int64_t min_rows = std::max<int64_t>(1, cpu::kMinElements / std::max<int64_t>(heads * head_dim, 1));
  cpu::for_ranges(k.threaded ? ctx : Context{}, rows, 1, min_rows, [&](int64_t r0, int64_t r1) {
    k.apply_rotary(x + r0 * heads * head_dim, r1 - r0, heads, head_dim, cos + r0 * head_dim, sin + r0 * head_dim,
                   precision);
  });
}

namespace {
// Query rows per attention piece: long prompts and segments are cut so that every thread gets work; keys and values
// are packed once per KV head and segment before the pieces run (slot 7 of the calling thread's scratch).
constexpr int64_t kAttentionRows = 128;

template <typename Fn>
void run_tasks(const Context& ctx, int64_t tasks, Fn&& fn) {
  if (ctx.pool) {
    ctx.pool->parallel_for(tasks, fn);
  } else {
    for (int64_t t = 0; t < tasks; ++t) fn(t, 0);
  }
}
// The fields both attention entry points set.
cpu::AttentionJob attention_job(const float* q, const void* k, const void* v, float* out, const AttentionShape& shape,
                                float scale, Precision precision) {
  cpu::AttentionJob job;
  job.q = q;
  job.k = k;
  job.v = v;
  job.out = out;
  job.shape = shape;
  job.scale = scale;
  job.precision = precision;
  return job;
}
}  // namespace

void causal_attention(const Context& ctx, const float* q, int64_t n, int64_t past, const void* k_cache,
                      const void* v_cache, const AttentionShape& shape, float scale, float* out, Precision precision,
                      DType cache_dtype) {
  if (cache_dtype != DType::F32 && cache_dtype != DType::BF16)
    throw_error("internal: a KV cache of ", dtype_name(cache_dtype));
  const cpu::Kernels& k = cpu::kernels_of(ctx);
  if (!k.attention)
    return reference::causal_attention(q, n, past, k_cache, v_cache, shape, scale, out, precision, cache_dtype);
  cpu::AttentionJob job = attention_job(q, k_cache, v_cache, out, shape, scale, precision);
  job.kv_dtype = cache_dtype;
  job.causal = true;
  job.past = past;
  job.n = n;
  const int64_t heads = shape.num_kv_heads;
  const size_t bytes = (k.attention_pack_bytes(job, n, past + n) + 63) / 64 * 64;
  char* packed = bytes ? static_cast<char*>(cpu::thread_scratch(7, bytes * static_cast<size_t>(heads))) : nullptr;
  if (packed)
    run_tasks(ctx, heads, [&](int64_t h, int) { k.attention_pack(job, h, 0, n, 0, past + n, packed + h * bytes); });
  const int64_t chunks = (n + kAttentionRows - 1) / kAttentionRows;
  run_tasks(ctx, heads * chunks, [&](int64_t t, int) {
    const int64_t h = t % heads;
    const int64_t q0 = (t / heads) * kAttentionRows, q1 = std::min(n, q0 + kAttentionRows);
    k.attention(job, packed ? packed + h * bytes : nullptr, h, q0, q1, 0, past + q1);
  });
}

void segment_attention(const Context& ctx, const float* q, const float* k_rows, const float* v,
                       const int64_t* cu_seqlens, int64_t num_segments, const AttentionShape& shape, float scale,
                       float* out, Precision precision) {
  const cpu::Kernels& k = cpu::kernels_of(ctx);
  if (!k.attention)
    return reference::segment_attention(q, k_rows, v, cu_seqlens, num_segments, shape, scale, out, precision);
  const cpu::AttentionJob job = attention_job(q, k_rows, v, out, shape, scale, precision);
  const int64_t heads = shape.num_kv_heads;
  // Packed keys and values of (segment s, kv head h) at packed + (offset[s] + h * bytes[s]).
  auto segment_bytes = [&](int64_t s) {
    const int64_t len = cu_seqlens[s + 1] - cu_seqlens[s];
    return (k.attention_pack_bytes(job, len, len) + 63) / 64 * 64;
  };
  size_t total = 0;
  int64_t pieces = 0;
  for (int64_t s = 0; s < num_segments; ++s) {
    total += segment_bytes(s) * static_cast<size_t>(heads);
    pieces += (cu_seqlens[s + 1] - cu_seqlens[s] + kAttentionRows - 1) / kAttentionRows;
  }
  char* packed = total ? static_cast<char*>(cpu::thread_scratch(7, total)) : nullptr;
  // Segment and byte offset of task groups; segments are few (one per image or temporal slice).
  auto locate = [&](int64_t piece, int64_t* segment, int64_t* q0, size_t* offset) {
    size_t off = 0;
    for (int64_t s = 0; s < num_segments; ++s) {
      const int64_t count = (cu_seqlens[s + 1] - cu_seqlens[s] + kAttentionRows - 1) / kAttentionRows;
      if (piece < count) {
        *segment = s;
        *q0 = cu_seqlens[s] + piece * kAttentionRows;
        *offset = off;
        return;
      }
      piece -= count;
      off += segment_bytes(s) * static_cast<size_t>(heads);
    }
  };
  if (packed) {
    size_t offset = 0;
    for (int64_t s = 0; s < num_segments; ++s) {
      const size_t bytes = segment_bytes(s);
      if (bytes) {
        const int64_t begin = cu_seqlens[s], end = cu_seqlens[s + 1];
        char* base = packed + offset;
        run_tasks(ctx, heads,
                  [&](int64_t h, int) { k.attention_pack(job, h, begin, end, begin, end, base + h * bytes); });
      }
      offset += bytes * static_cast<size_t>(heads);
    }
  }
  run_tasks(ctx, pieces * heads, [&](int64_t t, int) {
    int64_t s = 0, q0 = 0;
    size_t offset = 0;
    locate(t / heads, &s, &q0, &offset);
    const int64_t h = t % heads;
    const int64_t begin = cu_seqlens[s], end = cu_seqlens[s + 1];
    const size_t bytes = segment_bytes(s);
    k.attention(job, bytes ? packed + offset + h * bytes : nullptr, h, q0, std::min(end, q0 + kAttentionRows), begin,
                end);
  });
}

// The Context-free ops: the best kernels on the calling thread.
void linear(const float* x, int64_t n, const WeightMatrix& w, float* y, Precision precision,
            const WeightVector* bias) {
  linear(Context{}, x, n, w, y, precision, bias);
}
void embedding(const WeightMatrix& table, const int32_t* ids, int64_t n, float* out) {
  if (!is_vector_dtype(table.dtype)) throw_error("internal: embedding table of dtype ", dtype_name(table.dtype));
  reference::embedding(table, ids, n, out);
}
void rms_norm(const float* x, int64_t rows, int64_t dim, const WeightVector& weight, float eps, float* out,
              Precision precision) {
  rms_norm(Context{}, x, rows, dim, weight, eps, out, precision);
}
void layer_norm(const float* x, int64_t rows, int64_t dim, const WeightVector& weight, const WeightVector& bias,
                float eps, float* out, Precision precision) {
  layer_norm(Context{}, x, rows, dim, weight, bias, eps, out, precision);
}
void gelu_tanh(const float* x, size_t count, float* out, Precision precision) {
  gelu_tanh(Context{}, x, count, out, precision);
}
void gelu_erf(const float* x, size_t count, float* out, Precision precision) {
  gelu_erf(Context{}, x, count, out, precision);
}
void add_inplace(float* x, const float* y, size_t count, Precision precision) {
  add_inplace(Context{}, x, y, count, precision);
}
void silu_mul(const float* gate, const float* up, size_t count, float* out, Precision precision) {
  silu_mul(Context{}, gate, up, count, out, precision);
}
void apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim, const float* cos, const float* sin,
                  Precision precision) {
  apply_rotary(Context{}, x, rows, heads, head_dim, cos, sin, precision);
}
void causal_attention(const float* q, int64_t n, int64_t past, const void* k_cache, const void* v_cache,
                      const AttentionShape& shape, float scale, float* out, Precision precision, DType cache_dtype) {
  causal_attention(Context{}, q, n, past, k_cache, v_cache, shape, scale, out, precision, cache_dtype);
}
void segment_attention(const float* q, const float* k, const float* v, const int64_t* cu_seqlens,
                       int64_t num_segments, const AttentionShape& shape, float scale, float* out,
                       Precision precision) {
  segment_attention(Context{}, q, k, v, cu_seqlens, num_segments, shape, scale, out, precision);
}

}  // namespace ops
}  // namespace qwen3vl
