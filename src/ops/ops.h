// The op interface. Model code calls only these functions; each has a plain scalar reference implementation
// (ops/reference.cpp, namespace ops::reference) that optimized CPU kernels and later a CUDA backend must reproduce,
// tested against it. ops::* dispatch to the kernel set picked once from cpuid (ops/cpu/kernels.h: AVX-512 with
// BF16, AVX2+FMA, or the scalar reference); the overloads taking an ops::Context split their work over its pool.
//
// Activations are float. `Precision::BF16` reproduces a bfloat16 PyTorch forward: every op rounds its result
// to bf16 at the same points as the eager PyTorch code of transformers (noted per op), while accumulating in
// float, as PyTorch's CPU kernels do. `Precision::F32` rounds nowhere.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace qwen3vl {

enum class Precision { F32, BF16 };

inline float round_to(Precision precision, float value) {
  return precision == Precision::BF16 ? round_to_bf16(value) : value;
}

// How a 2-D weight lies in memory. OutIn: [out_features, in_features], as nn.Linear / nn.Embedding store it.
// InOut: [in_features, out_features], input-major (y = x · W), as the fused MoE expert tensors are stored on disk.
enum class WeightLayout { OutIn, InOut };

struct LoraTerm;  // below
struct LoraTerms {
  const LoraTerm* terms = nullptr;
  int count = 0;
};

// A 2-D weight: rows = out_features, cols = in_features whatever the layout; `layout` says how they are stored.
// `lora`: the LoRA adapters bound to this weight (a copy of the checkpoint's views made per adapter set, see
// model/lora_adapter.h); ops::linear adds them to its result. Empty for the checkpoint's own weights.
struct WeightMatrix {
  DType dtype = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  WeightLayout layout = WeightLayout::OutIn;
  LoraTerms lora = {};
};

// A 1-D weight (norm scales).
struct WeightVector {
  DType dtype = DType::F32;
  const void* data = nullptr;
  int64_t size = 0;
};

// One LoRA adapter's term on a linear, as PEFT's LoRA Linear.forward (peft/tuners/lora/layer.py) adds it:
//   result = base_layer(x)                                   (rounded to the activation dtype)
//   result = result + lora_B(lora_A(x)) * scaling            (in float: PEFT's autocast_adapter_dtype keeps the
//                                                             adapter weights in fp32 whatever the base dtype)
//   result = result.to(base dtype)                           (one rounding after all terms)
// lora_A [r, in] and lora_B [out, r] are F32 weights (OutIn). A DoRA term (peft/tuners/lora/dora.py
// DoraLinearLayer.forward) also has dora_scale [out] = magnitude / ||W + scaling * B A|| per output row, and adds
//   (dora_scale - 1) * (result - bias) + dora_scale * lora_B(lora_A(x)) * scaling.
struct LoraTerm {
  WeightMatrix lora_A;
  WeightMatrix lora_B;
  float scaling = 1.0f;
  const float* dora_scale = nullptr;
  // The row norms ||W + scaling * B A|| [out] dora_scale was computed from; training only (the magnitude's
  // gradient in ops::linear_backward, ops/backward.h). The forward never reads it.
  const float* dora_norm = nullptr;
};

class ThreadPool;  // core/thread_pool.h

namespace ops {

namespace cpu {
struct Kernels;  // ops/cpu/kernels.h
}

// Where ops run: the thread pool they split their work over (null: the calling thread alone) and the kernel set
// (null: the best the processor supports). Model code gets one at construction and passes it to every call; the
// overloads without a Context use the calling thread and the best kernels.
struct Context {
  ThreadPool* pool = nullptr;
  const cpu::Kernels* kernels = nullptr;
};

// y[n, w.rows] = x[n, w.cols] · w^T (+ bias[w.rows]), result rounded per precision. The one matmul entry point of
// the engine (with linear_group below, which it is one output of): quantized formats, LoRA and profiling hook in
// here. With a bias the sum is rounded ONCE, as PyTorch's
// addmm (nn.Linear on 2-D input) adds the bias inside the float accumulator before the bf16 cast.
// Both layouts: an InOut weight is read in place (one pass over its bytes), never transposed or copied.
// The weight's LoRA terms (w.lora, LoraTerm above) are added to that result without a merged copy of the weight,
// for every base format.
void linear(const float* x, int64_t n, const WeightMatrix& w, float* y, Precision precision,
            const WeightVector* bias = nullptr);

// out[i, :] = table[ids[i], :] (rows converted to float; no rounding needed, stored values are exact).
void embedding(const WeightMatrix& table, const int32_t* ids, int64_t n, float* out);

// Qwen3 RMSNorm over rows of `dim`: x * rsqrt(mean(x^2) + eps) in float, rounded to the activation dtype,
// then times the weight (and rounded again) — transformers' Qwen3VLTextRMSNorm.
void rms_norm(const float* x, int64_t rows, int64_t dim, const WeightVector& weight, float eps, float* out,
              Precision precision);

// nn.LayerNorm over rows of `dim` (vision tower): mean and biased variance of the row in float, rstd = 1/sqrt(var+eps),
// then out = (x * rstd + (-mean * rstd)) * weight + bias in float (PyTorch's CPU kernel order), rounded once.
void layer_norm(const float* x, int64_t rows, int64_t dim, const WeightVector& weight, const WeightVector& bias,
                float eps, float* out, Precision precision);

// "gelu_pytorch_tanh": 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))) in float, rounded once. In place ok.
void gelu_tanh(const float* x, size_t count, float* out, Precision precision);

// Exact nn.GELU(): x * 0.5 * (1 + erf(x / sqrt(2))) in float, rounded once. In place ok.
void gelu_erf(const float* x, size_t count, float* out, Precision precision);

// x += y (residual connections).
void add_inplace(float* x, const float* y, size_t count, Precision precision);

// out = silu(gate) * up; in bf16 silu's result is rounded before the product (two PyTorch ops).
void silu_mul(const float* gate, const float* up, size_t count, float* out, Precision precision);

// Rotary embedding, rotate_half convention, in place on x [rows, heads, head_dim]; cos/sin [rows, head_dim]
// (already in the activation dtype). In bf16: x*cos and rotate_half(x)*sin are rounded, then their sum.
void apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim, const float* cos, const float* sin,
                  Precision precision);

struct AttentionShape {
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // query head h reads kv head h / (num_heads / num_kv_heads)
  int64_t head_dim = 0;
};

// Causal attention of n query rows that sit at cache indices past .. past+n-1 over cache rows 0 .. past+n-1.
// q [n, num_heads, head_dim]; k_cache, v_cache [>= past+n, num_kv_heads, head_dim] of cache_dtype (F32, or BF16:
// the cache of a bf16 model, whose keys and values are bf16 values, so it holds them exactly in half the bytes, as
// transformers' cache holds bf16 tensors); out [n, num_heads*head_dim].
// Follows transformers' eager_attention_forward: scores = (q·k) * scale, causal mask, softmax in float as torch's
// CPU kernel computes it over the row of past+n keys (the masked ones add exact zeros), then · v.
void causal_attention(const float* q, int64_t n, int64_t past, const void* k_cache, const void* v_cache,
                      const AttentionShape& shape, float scale, float* out, Precision precision,
                      DType cache_dtype = DType::F32);

// Non-causal (full) attention inside each segment [cu_seqlens[s], cu_seqlens[s+1]) of n = cu_seqlens[num_segments]
// rows; rows of different segments never see each other (the vision tower: one segment per image / temporal slice).
// q, k, v [n, heads, head_dim] (k/v with num_kv_heads); out [n, num_heads*head_dim]. Same numerics as
// causal_attention (transformers' eager_attention_forward per cu_seqlens chunk).
void segment_attention(const float* q, const float* k, const float* v, const int64_t* cu_seqlens,
                       int64_t num_segments, const AttentionShape& shape, float scale, float* out,
                       Precision precision);

// The same ops on ctx.pool with ctx.kernels (numerics as documented above; F32 results equal the reference's up to
// float summation order, BF16 results are rounded at the same points).
void linear(const Context& ctx, const float* x, int64_t n, const WeightMatrix& w, float* y, Precision precision,
            const WeightVector* bias = nullptr);
// Several linears of the same x (q/k/v, gate/up): y_i = linear(x, w_i) (+ bias_i) for up to 4 outputs, with x
// packed once and one hand-off to the pool for all of them when the weights share cols, format and layout (else
// one linear each). Same numbers as separate linear calls.
struct LinearOutput {
  const WeightMatrix* w = nullptr;
  float* y = nullptr;  // [n, w->rows]
  const WeightVector* bias = nullptr;
};
void linear_group(const Context& ctx, const float* x, int64_t n, const LinearOutput* outputs, int count,
                  Precision precision);
void rms_norm(const Context& ctx, const float* x, int64_t rows, int64_t dim, const WeightVector& weight, float eps,
              float* out, Precision precision);
void layer_norm(const Context& ctx, const float* x, int64_t rows, int64_t dim, const WeightVector& weight,
                const WeightVector& bias, float eps, float* out, Precision precision);
void gelu_tanh(const Context& ctx, const float* x, size_t count, float* out, Precision precision);
void gelu_erf(const Context& ctx, const float* x, size_t count, float* out, Precision precision);
void add_inplace(const Context& ctx, float* x, const float* y, size_t count, Precision precision);
void silu_mul(const Context& ctx, const float* gate, const float* up, size_t count, float* out, Precision precision);
void apply_rotary(const Context& ctx, float* x, int64_t rows, int64_t heads, int64_t head_dim, const float* cos,
                  const float* sin, Precision precision);
void causal_attention(const Context& ctx, const float* q, int64_t n, int64_t past, const void* k_cache,
                      const void* v_cache, const AttentionShape& shape, float scale, float* out, Precision precision,
                      DType cache_dtype = DType::F32);
void segment_attention(const Context& ctx, const float* q, const float* k, const float* v, const int64_t* cu_seqlens,
                       int64_t num_segments, const AttentionShape& shape, float scale, float* out,
                       Precision precision);

// The scalar reference implementations (ops/reference.cpp): the ground truth of the kernel tests, and the kernel
// set of processors without AVX2.
namespace reference {
void linear(const float* x, int64_t n, const WeightMatrix& w, float* y, Precision precision,
            const WeightVector* bias = nullptr);
void embedding(const WeightMatrix& table, const int32_t* ids, int64_t n, float* out);
void rms_norm(const float* x, int64_t rows, int64_t dim, const WeightVector& weight, float eps, float* out,
              Precision precision);
void layer_norm(const float* x, int64_t rows, int64_t dim, const WeightVector& weight, const WeightVector& bias,
                float eps, float* out, Precision precision);
void gelu_tanh(const float* x, size_t count, float* out, Precision precision);
void gelu_erf(const float* x, size_t count, float* out, Precision precision);
void add_inplace(float* x, const float* y, size_t count, Precision precision);
void silu_mul(const float* gate, const float* up, size_t count, float* out, Precision precision);
void apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim, const float* cos, const float* sin,
                  Precision precision);
void causal_attention(const float* q, int64_t n, int64_t past, const void* k_cache, const void* v_cache,
                      const AttentionShape& shape, float scale, float* out, Precision precision,
                      DType cache_dtype = DType::F32);
void segment_attention(const float* q, const float* k, const float* v, const int64_t* cu_seqlens,
                       int64_t num_segments, const AttentionShape& shape, float scale, float* out,
                       Precision precision);
}  // namespace reference

}  // namespace ops
}  // namespace qwen3vl
