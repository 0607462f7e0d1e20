// The backward ops: for each forward op of ops.h that training differentiates, the gradient of its inputs (and of
// its weights) given the gradient of its output. Same pattern as the forward ops: a scalar reference
// (ops/reference_backward.cpp, namespace ops::reference) that the dispatched versions (ops/cpu/dispatch_backward.cpp,
// split over ctx.pool, matmuls through the linear kernels) must reproduce, tested against central finite
// differences in double and against torch.autograd.
//
// Conventions: everything is float32 (training runs the F32 forward; PyTorch autograd of a float32 model).
// Input gradients (dx, dq, ...) are WRITTEN unless the function says it accumulates; weight gradients (dW, db,
// LoRA factors, norm scales, embedding tables) are ACCUMULATED (+=), so micro-batches and tied or shared weights
// add up. A null gradient pointer means "not wanted": that part is skipped and costs no work (frozen weights).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/ops.h"

namespace qwen3vl {
namespace ops {

// Gradient buffers of one linear layer (all float32, accumulated).
struct LinearGrads {
  float* weight = nullptr;          // dW, laid out like w: [rows, cols] for OutIn, [cols, rows] for InOut
  float* bias = nullptr;            // db [rows]
  // Per LoRA term t of w.lora (same order); the arrays or their entries may be null (that factor frozen).
  float* const* lora_A = nullptr;   // dA_t [r_t, cols]
  float* const* lora_B = nullptr;   // dB_t [rows, r_t]
  float* const* magnitude = nullptr;  // DoRA: d lora_magnitude_vector_t [rows]

  bool any() const;  // whether any buffer is set (else the layer's parameters are all frozen)
  // The buffer of LoRA term t in one of the per-term arrays above (null when the array or its entry is).
  static float* of_term(float* const* per_term, int t) { return per_term ? per_term[t] : nullptr; }
  // Throws Error (internal) for what linear_backward cannot give for `w`: dW of a quantized weight, or a magnitude
  // gradient for a term without its DoRA scale and norm.
  void check(const WeightMatrix& w) const;
};

// Backward of linear (ops.h) with its LoRA terms, PEFT's LoRA Linear.forward (peft/tuners/lora/layer.py):
//   y = x W^T + b + sum_t s_t * (x A_t^T) B_t^T
//   dx  = dy W + sum_t s_t * (dy B_t) A_t                [n, cols]   (null: not wanted)
//   dW += dy^T x,  db += sum_rows dy
//   dB_t += s_t * dy^T (x A_t^T),  dA_t += s_t * (dy B_t)^T x
// DoRA terms (dora.py DoraLinearLayer.forward, the weight norm detached as the paper and PEFT do):
//   y = x W^T + b + (f - 1) * (x W^T) + f * s * (x A^T) B^T,  f = m / ||W + s B A||_row (dora_scale)
//   dm[o] += sum_n dy[n, o] * ((x W^T)[n, o] + s * ((x A^T) B^T)[n, o]) / ||W + s B A||_o
// (the norm from LoraTerm.dora_norm, required when dm is wanted), and the other gradients see dy * f in place of dy.
// Several terms chain as PEFT's loop over active adapters does (a DoRA term's base_result is the result so far minus
// the bias), so each term's backward sees the gradient of its own output.
// The base weight may be of any format (bf16, q8, q4: dx through a quantized base for LoRA on a quantized model);
// dW is only available for F32 and BF16 weights. x: the forward's input [n, cols]; dy [n, rows].
// accumulate_dx: add to dx instead of writing it (several layers reading the same x, e.g. q/k/v).
void linear_backward(const Context& ctx, const float* x, int64_t n, const WeightMatrix& w, const float* dy, float* dx,
                     bool accumulate_dx, const LinearGrads& grads);

// Backward of embedding: dtable[ids[i], :] += dy[i, :] for every i with ids[i] >= 0 (a negative id marks a row
// that did not come from the table, e.g. an image placeholder replaced by vision features) and ids[i] !=
// padding_idx (nn.Embedding(padding_idx=...) gives that row no gradient; -1: none).
void embedding_backward(const int32_t* ids, int64_t n, const float* dy, int64_t dim, float* dtable,
                        int64_t padding_idx = -1);

// Backward of rms_norm (Qwen3VLTextRMSNorm; q_norm / k_norm with rows = tokens * heads): with r = rsqrt(mean(x^2)
// + eps) and n = x r: dx = r * (dy w) - x r^3 mean((dy w) x) (written; may be null); dweight += sum_rows dy * n.
void rms_norm_backward(const Context& ctx, const float* x, int64_t rows, int64_t dim, const WeightVector& weight,
                       float eps, const float* dy, float* dx, float* dweight);

// Backward of layer_norm (nn.LayerNorm): xhat = (x - mean) rstd, g = dy w:
// dx = rstd (g - mean(g) - xhat mean(g xhat)) (written; may be null); dweight += sum_rows dy xhat;
// dbias += sum_rows dy.
void layer_norm_backward(const Context& ctx, const float* x, int64_t rows, int64_t dim, const WeightVector& weight,
                         const WeightVector& bias, float eps, const float* dy, float* dx, float* dweight,
                         float* dbias);

// dx = dy * gelu'(x), x the forward's input; tanh form (torch's gelu_backward with approximate="tanh") and exact
// erf form (Phi(x) + x phi(x)). dx may alias dy.
void gelu_tanh_backward(const Context& ctx, const float* x, const float* dy, size_t count, float* dx);
void gelu_erf_backward(const Context& ctx, const float* x, const float* dy, size_t count, float* dx);

// Backward of silu_mul (out = silu(gate) * up): dgate = dy * up * sigmoid(g) (1 + g (1 - sigmoid(g))),
// dup = dy * silu(gate). Both written; either may alias dy.
void silu_mul_backward(const Context& ctx, const float* gate, const float* up, const float* dy, size_t count,
                       float* dgate, float* dup);

// Backward of apply_rotary, in place on dx [rows, heads, head_dim] (holding dy on entry). For the pair
// (i, i + half): dx_i = dy_i cos_i + dy_{i+half} sin_{i+half}, dx_{i+half} = dy_{i+half} cos_{i+half} - dy_i sin_i.
void apply_rotary_backward(const Context& ctx, float* dx, int64_t rows, int64_t heads, int64_t head_dim,
                           const float* cos, const float* sin);

// Backward of attention over n rows split into segments [cu_seqlens[s], cu_seqlens[s+1]): causal inside each
// segment (the text decoder on a packed sequence; one segment = an unpacked sample) or full inside each segment
// (the vision tower, causal = false). q [n, num_heads, head_dim]; k, v [n, num_kv_heads, head_dim] (the forward's
// inputs after rotary); dout [n, num_heads * head_dim]. Recomputes the softmax from q and k (float, as the forward).
// dq [n, num_heads, head_dim], dk and dv [n, num_kv_heads, head_dim] written; GQA sums the query heads of a group.
void attention_backward(const Context& ctx, const float* q, const float* k, const float* v, int64_t n,
                        const int64_t* cu_seqlens, int64_t num_segments, bool causal, const AttentionShape& shape,
                        float scale, const float* dout, float* dq, float* dk, float* dv);

// Fused softmax cross-entropy over rows of logits [rows, vocab] with targets (-100 = ignored), as
// torch.nn.functional.cross_entropy computes it in float32. Returns the SUM over non-ignored rows of
// logsumexp(z) - z[target] (accumulated in double) and sets *count to their number. dlogits (may alias logits):
// grad_scale * (softmax(z) - onehot(target)) for non-ignored rows, 0 for ignored ones; null: loss only.
// Throws Error for a target outside [0, vocab) other than -100.
double cross_entropy(const Context& ctx, const float* logits, int64_t rows, int64_t vocab, const int32_t* targets,
                     float grad_scale, float* dlogits, int64_t* count);

namespace reference {
void linear_backward(const float* x, int64_t n, const WeightMatrix& w, const float* dy, float* dx, bool accumulate_dx,
                     const LinearGrads& grads);
void rms_norm_backward(const float* x, int64_t rows, int64_t dim, const WeightVector& weight, float eps,
                       const float* dy, float* dx, float* dweight);
void layer_norm_backward(const float* x, int64_t rows, int64_t dim, const WeightVector& weight,
                         const WeightVector& bias, float eps, const float* dy, float* dx, float* dweight,
                         float* dbias);
void gelu_tanh_backward(const float* x, const float* dy, size_t count, float* dx);
void gelu_erf_backward(const float* x, const float* dy, size_t count, float* dx);
void silu_mul_backward(const float* gate, const float* up, const float* dy, size_t count, float* dgate, float* dup);
void apply_rotary_backward(float* dx, int64_t rows, int64_t heads, int64_t head_dim, const float* cos,
                           const float* sin);
void attention_backward(const float* q, const float* k, const float* v, int64_t n, const int64_t* cu_seqlens,
                        int64_t num_segments, bool causal, const AttentionShape& shape, float scale,
                        const float* dout, float* dq, float* dk, float* dv);
double cross_entropy(const float* logits, int64_t rows, int64_t vocab, const int32_t* targets, float grad_scale,
                     float* dlogits, int64_t* count);
}  // namespace reference

}  // namespace ops
}  // namespace qwen3vl
