// The CPU kernel sets behind the op interface, one thin table of function pointers per instruction set, chosen
// once at startup from cpuid (best_kernels) or named explicitly (tests, `qwen3vl bench --isa`):
//   avx512  AVX-512 F/BW/VL/DQ + AVX512_BF16 + AVX512_VNNI (kernels_avx512.cpp, compiled with those flags only)
//   avx2    AVX2 + FMA + F16C                  (kernels_avx2.cpp)
//   scalar  the reference implementations of ops/reference.cpp, single-threaded
// The AVX2 and AVX-512 files share their algorithms (kernels_impl.inc) over a small vector vocabulary
// (simd_avx2.inc / simd_avx512.inc), each copy in its own namespace so that no symbol compiled for one instruction
// set can be linked into a caller meant for the other; they include no STL headers for the same reason (an inline
// template instantiated there would be emitted with AVX-512 code under a shared, weak name).
//
// The kernels work on ranges (output columns, heads, rows); ops/cpu/dispatch.cpp splits an op into ranges over the
// thread pool and owns the scratch memory. Every kernel is tested against the reference (tests/unit/test_kernels_*).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/ops.h"

namespace qwen3vl {
namespace ops {
namespace cpu {

enum class Isa { Scalar, Avx2, Avx512 };

// One call of linear: y[i, j] = sum_k x[i, k] * w[j, k] (+ bias[j]), rounded per precision, i < n, j < w.rows.
struct LinearJob {
  const float* x = nullptr;         // [n, w.cols]
  int64_t n = 0;
  const WeightMatrix* w = nullptr;
  const float* bias = nullptr;      // [w.rows] in float, or null
  float* y = nullptr;               // [n, w.rows]
  Precision precision = Precision::F32;
  // Set before the columns run (see Kernels):
  bool bf16_dot = false;            // x and w hold bf16 values only: bf16 dot-product instructions are exact
  const void* packed_x = nullptr;   // x rearranged for the kernel (bf16 pairs or float tiles), or null
};

// Attention of query rows [q_begin, q_end) of one KV head's query heads over keys [k_begin, k_end).
struct AttentionJob {
  const float* q = nullptr;  // [rows, num_heads, head_dim]
  const void* k = nullptr;   // [keys, num_kv_heads, head_dim] of kv_dtype
  const void* v = nullptr;   // like k
  DType kv_dtype = DType::F32;  // F32, or BF16 (a KV cache of bf16 values)
  float* out = nullptr;      // [rows, num_heads * head_dim]
  AttentionShape shape;
  float scale = 1.f;
  Precision precision = Precision::F32;
  // causal: query row i (of n rows in this call) sits at key index past + i and sees keys [0, past + i]; each
  // softmax row is past + n long (the rest masked). Otherwise every query row sees exactly [k_begin, k_end).
  bool causal = false;
  int64_t past = 0;
  int64_t n = 0;
};

struct Kernels {
  Isa isa = Isa::Scalar;
  const char* name = "scalar";
  bool threaded = false;  // false: the ops run whole on the calling thread (the scalar reference)

  // linear. The caller sets job.bf16_dot = bf16_capable(job) && all_bf16(x, n * w.cols) (splitting the check over
  // threads when large), then packs x into prepare_bytes(job) bytes of scratch with pack_x(job, packed, r0, r1) over
  // row ranges whose bounds are multiples of row_granule(job) (or n), sets job.packed_x (null when prepare_bytes is
  // 0), and computes column ranges with columns(job, j0, j1), bounds multiples of granule(job) (or w.rows). Every
  // range may run on any thread.
  bool (*all_bf16)(const float* x, int64_t count) = nullptr;  // every value a bf16 value
  bool (*linear_bf16_capable)(const LinearJob&) = nullptr;
  size_t (*linear_prepare_bytes)(const LinearJob&) = nullptr;
  int64_t (*linear_row_granule)(const LinearJob&) = nullptr;
  void (*linear_pack_x)(const LinearJob&, void* packed, int64_t r0, int64_t r1) = nullptr;
  int64_t (*linear_granule)(const LinearJob&) = nullptr;
  void (*linear_columns)(const LinearJob&, int64_t j0, int64_t j1) = nullptr;

  // attention, in two phases. pack_bytes(job, rows, keys): scratch for one KV head's keys and values when `rows`
  // query rows attend to `keys` keys (0: nothing to pack, the kernel reads the cache rows in place). pack(job,
  // kv_head, q_begin, q_end, k_begin, k_end, buffer) fills it once per KV head and key range; then attention(job,
  // packed, kv_head, q_begin, q_end, k_begin, k_end) runs all query heads of the KV head's group for query rows
  // [q_begin, q_end) over keys [k_begin, k_end) (causal jobs: k_begin = 0, k_end = past + q_end, a prefix of the
  // packed keys). Pieces of one phase may run on any threads.
  size_t (*attention_pack_bytes)(const AttentionJob&, int64_t rows, int64_t keys) = nullptr;
  void (*attention_pack)(const AttentionJob&, int64_t kv_head, int64_t q_begin, int64_t q_end, int64_t k_begin,
                         int64_t k_end, void* packed) = nullptr;
  void (*attention)(const AttentionJob&, const void* packed, int64_t kv_head, int64_t q_begin, int64_t q_end,
                    int64_t k_begin, int64_t k_end) = nullptr;

  // One row of the attention backward (ops/cpu/attention_backward.cpp), null in the scalar set: s holds `keys` raw
  // scores q.k and dp the products dO.v; leaves P = softmax(s * scale) in s and dS = P (dP - sum(P dP)) * scale in
  // dp (the sums in float lanes), both zero from `keys` up to `width`.
  void (*softmax_backward_row)(float* s, float* dp, int64_t keys, int64_t width, float scale) = nullptr;

  // Row- and element-wise ops on a range (the numerics of the ops.h functions of the same name).
  void (*rms_norm)(const float* x, int64_t rows, int64_t dim, const WeightVector& weight, float eps, float* out,
                   Precision precision) = nullptr;
  void (*layer_norm)(const float* x, int64_t rows, int64_t dim, const WeightVector& weight, const WeightVector& bias,
                     float eps, float* out, Precision precision) = nullptr;
  void (*gelu_tanh)(const float* x, size_t count, float* out, Precision precision) = nullptr;
  void (*gelu_erf)(const float* x, size_t count, float* out, Precision precision) = nullptr;
  void (*add_inplace)(float* x, const float* y, size_t count, Precision precision) = nullptr;
  void (*silu_mul)(const float* gate, const float* up, size_t count, float* out, Precision precision) = nullptr;
  void (*apply_rotary)(float* x, int64_t rows, int64_t heads, int64_t head_dim, const float* cos, const float* sin,
                       Precision precision) = nullptr;
};

// What the processor supports (cpuid + the OS saving the vector state), and the kernel sets.
Isa detect_isa();
const Kernels& scalar_kernels();
const Kernels* avx2_kernels();    // null when not compiled in (non-x86 builds)
const Kernels* avx512_kernels();  // null when not compiled in
// Implemented by kernels_<isa>.cpp: set the function pointers of a table built by the caller; false when the set
// is not compiled in. (The ISA files construct no shared type, so no inline constructor is emitted with their flags.)
bool fill_avx2_kernels(Kernels& kernels);
bool fill_avx512_kernels(Kernels& kernels);
// The set for `isa`, or null when the processor cannot run it.
const Kernels* kernels_for(Isa isa);
// The best set the processor runs, chosen once.
const Kernels& best_kernels();
// "avx512" / "avx2" / "scalar"; parse_isa throws Error for any other name.
const char* isa_name(Isa isa);
Isa parse_isa(const char* name);

// Per-thread scratch memory for the kernels: 64-byte aligned, grown on demand and kept for the thread's life, so a
// steady decode loop allocates nothing. `slot` < 8 picks one of independent buffers: 0 linear weight panels,
// 1 quantized weight rows unpacked for a panel, 2 linear bias, 3 linear packed x, 4 LoRA intermediates,
// 5 attention scores, 6 attention rows, 7 packed keys and values.
void* thread_scratch(int slot, size_t bytes);
// How many times any thread's scratch was (re)allocated so far (tests check that a warm decode loop adds none).
int64_t scratch_allocations();

}  // namespace cpu
}  // namespace ops
}  // namespace qwen3vl
