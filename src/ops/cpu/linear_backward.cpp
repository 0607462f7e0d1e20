// ops::linear_backward on a Context (ops/backward.h): every product runs through the forward GEMM (ops::linear) on
// views of the operands. W^T is W's own bytes read in the other layout; dW = dy^T x takes dy^T (a transposed copy,
// n * rows floats) as the GEMM's input and x as an InOut weight [cols, n]. Each output element is then one float
// dot product summed in a fixed order by one thread, the same bits at any thread count.
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "ops/backward.h"
#include "ops/cpu/parallel_ranges.h"
#include "ops/lora.h"
#include "ops/quant.h"

namespace qwen3vl {
namespace ops {
namespace {

// The temporaries, in per-thread buffers of the calling thread (cpu::backward_scratch).
enum Slot { kTransposed, kProduct, kScaled, kHidden, kHiddenGrad, kDxLora, kGrad, kDxProduct, kDense, kGradBlock };

// The largest temporary product in floats: dW of a large matrix (lm_head) is built in row blocks of at most this.
constexpr int64_t kBlockFloats = int64_t{1} << 22;

WeightMatrix f32_matrix(const float* data, int64_t rows, int64_t cols, WeightLayout layout) {
  WeightMatrix m;
  m.dtype = DType::F32;
  m.data = data;
  m.rows = rows;
  m.cols = cols;
  m.layout = layout;
  return m;
}

// W^T as a weight (rows = W's cols): the same bytes read in the other layout. Not for quantized formats.
WeightMatrix transposed(const WeightMatrix& w) {
  WeightMatrix t;
  t.dtype = w.dtype;
  t.data = w.data;
  t.rows = w.cols;
  t.cols = w.rows;
  t.layout = w.layout == WeightLayout::OutIn ? WeightLayout::InOut : WeightLayout::OutIn;
  return t;
}

WeightMatrix without_lora(const WeightMatrix& w) {
  WeightMatrix base = w;
  base.lora = {};
  return base;
}

// dst[cols, rows] = src[rows, cols]^T for src of row stride ld, in tiles (both sides stay in cache), split by
// destination rows.
void transpose(const Context& ctx, const float* src, int64_t rows, int64_t cols, int64_t ld, float* dst) {
  constexpr int64_t kTile = 32;
  cpu::for_ranges(ctx, cols, kTile, std::max<int64_t>(1, cpu::kMinParallelElements / std::max<int64_t>(rows, 1)),
                  [&](int64_t c0, int64_t c1) {
                    for (int64_t r0 = 0; r0 < rows; r0 += kTile)
                      for (int64_t c = c0; c < c1; ++c) {
                        const int64_t r1 = std::min(rows, r0 + kTile);
                        for (int64_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * ld + c];
                      }
                  });
}

// dst[e] += src[e].
void add_to(const Context& ctx, const float* src, int64_t count, float* dst) {
  cpu::for_ranges(ctx, count, 64, cpu::kMinParallelElements, [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e) dst[e] += src[e];
  });
}

// c[m, p] += a^T b for a [n, m], b [n, p] (the weight-gradient shape dy^T x): a^T is the GEMM's input, b an InOut
// weight [p rows, n cols]; in blocks of rows of c so that the temporaries (a block of a^T and its product) stay
// bounded.
void add_transposed_product(const Context& ctx, const float* a, const float* b, int64_t n, int64_t m, int64_t p,
                            float* c) {
  const int64_t block = std::min(m, std::max<int64_t>(1, kBlockFloats / std::max<int64_t>({p, n, 1})));
  float* a_t = cpu::backward_scratch(kTransposed, static_cast<size_t>(block * n));
  float* product = cpu::backward_scratch(kProduct, static_cast<size_t>(block * p));
  const WeightMatrix b_weight = f32_matrix(b, p, n, WeightLayout::InOut);
  for (int64_t r0 = 0; r0 < m; r0 += block) {
    const int64_t rows = std::min(block, m - r0);
    transpose(ctx, a + r0, n, rows, m, a_t);
    linear(ctx, a_t, rows, b_weight, product, Precision::F32);
    add_to(ctx, product, rows * p, c + r0 * p);
  }
}

// c[n, p] = a[n, m] b[m, p] (b row-major): b read as an InOut weight [p rows, m cols].
void multiply(const Context& ctx, const float* a, int64_t n, int64_t m, const float* b, int64_t p, float* c) {
  linear(ctx, a, n, f32_matrix(b, p, m, WeightLayout::InOut), c, Precision::F32);
}

// out[n, w.cols] = g[n, w.rows] W. Quantized weights are dequantized in blocks of whole 16-row tiles, each block's
// product added in block order.
void times_weight(const Context& ctx, const float* g, int64_t n, const WeightMatrix& w, float* out) {
  if (!is_quantized(w.dtype)) return linear(ctx, g, n, transposed(without_lora(w)), out, Precision::F32);
  const int64_t rows = w.rows, cols = w.cols;
  const int64_t block = std::min(rows, std::max<int64_t>(16, kBlockFloats / std::max<int64_t>(cols, 1) / 16 * 16));
  float* dense = cpu::backward_scratch(kDense, static_cast<size_t>(block * cols));
  float* g_block = block < rows ? cpu::backward_scratch(kGradBlock, static_cast<size_t>(n * block)) : nullptr;
  float* product = block < rows ? cpu::backward_scratch(kProduct, static_cast<size_t>(n * cols)) : nullptr;
  for (int64_t j0 = 0; j0 < rows; j0 += block) {
    const int64_t count = std::min(block, rows - j0);
    cpu::for_ranges(ctx, count, 1, std::max<int64_t>(1, cpu::kMinParallelElements / cols / 4),
                    [&](int64_t r0, int64_t r1) {
                      for (int64_t r = r0; r < r1; ++r) dequantize_row(w, j0 + r, dense + r * cols);
                    });
    const float* g_in = g;
    if (block < rows) {
      for (int64_t i = 0; i < n; ++i)
        std::copy(g + i * rows + j0, g + i * rows + j0 + count, g_block + i * count);
      g_in = g_block;
    }
    const WeightMatrix dense_t = f32_matrix(dense, cols, count, WeightLayout::InOut);
    if (j0 == 0) {
      linear(ctx, g_in, n, dense_t, out, Precision::F32);
    } else {
      linear(ctx, g_in, n, dense_t, product, Precision::F32);
      add_to(ctx, product, n * cols, out);
    }
  }
}

// sums[j] += sum_i a[i, j] * (b ? b[i, j] : 1) / (divisor ? divisor[j] : 1), per column in double over the rows
// in order, split by columns.
void add_column_sums(const Context& ctx, const float* a, const float* b, int64_t n, int64_t cols,
                     const float* divisor, float* sums) {
  cpu::for_ranges(ctx, cols, 64, std::max<int64_t>(64, cpu::kMinParallelElements / std::max<int64_t>(n, 1)),
                  [&](int64_t j0, int64_t j1) {
                    std::vector<double> acc(static_cast<size_t>(j1 - j0), 0.0);
                    for (int64_t i = 0; i < n; ++i) {
                      const float* row = a + i * cols;
                      if (b) {
                        const float* other = b + i * cols;
                        for (int64_t j = j0; j < j1; ++j)
                          acc[j - j0] += static_cast<double>(row[j]) * other[j];
                      } else {
                        for (int64_t j = j0; j < j1; ++j) acc[j - j0] += row[j];
                      }
                    }
                    for (int64_t j = j0; j < j1; ++j)
                      sums[j] = static_cast<float>(sums[j] + (divisor ? acc[j - j0] / divisor[j] : acc[j - j0]));
                  });
}

// The input of each DoRA term's scale whose magnitude gradient is wanted (reference_backward.cpp dora_inputs: the
// chain z_0 = x W^T, z_t = z_{t-1} + s_t B_t A_t x, scaled by f_t after a DoRA term).
std::vector<std::vector<float>> dora_inputs(const Context& ctx, const float* x, int64_t n, const WeightMatrix& w,
                                            const LinearGrads& grads) {
  const LoraTerms& lora = w.lora;
  std::vector<std::vector<float>> inputs(static_cast<size_t>(lora.count));
  bool wanted = false;
  for (int t = 0; t < lora.count; ++t) wanted = wanted || LinearGrads::of_term(grads.magnitude, t);
  if (!wanted) return inputs;
  const int64_t out = w.rows;
  std::vector<float> z(static_cast<size_t>(n * out)), delta(z.size());
  linear(ctx, x, n, without_lora(w), z.data(), Precision::F32);
  for (int t = 0; t < lora.count; ++t) {
    const LoraTerm& term = lora.terms[t];
    std::vector<float> h(static_cast<size_t>(n * term.lora_A.rows));
    linear(ctx, x, n, term.lora_A, h.data(), Precision::F32);
    linear(ctx, h.data(), n, term.lora_B, delta.data(), Precision::F32);
    for (size_t e = 0; e < z.size(); ++e) z[e] += delta[e] * term.scaling;
    if (LinearGrads::of_term(grads.magnitude, t)) inputs[t] = z;
    if (term.dora_scale)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < out; ++j) z[i * out + j] *= term.dora_scale[j];
  }
  return inputs;
}

// One LoRA term's factor gradients and its share of dx (added to dx_lora when non-null), given g, the gradient of
// the term's output (PEFT's lora_B(lora_A(x)) * scaling, before any DoRA factor).
void lora_term_backward(const Context& ctx, const float* x, int64_t n, const WeightMatrix& w, const LoraTerm& term,
                        const float* g, float* dA, float* dB, float* dx_lora) {
  const int64_t out = w.rows, in = w.cols, r = term.lora_A.rows;
  float* scaled = cpu::backward_scratch(kScaled, static_cast<size_t>(n * out));
  float* dh = cpu::backward_scratch(kHiddenGrad, static_cast<size_t>(n * r));
  cpu::for_ranges(ctx, n * out, 64, cpu::kMinParallelElements, [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e) scaled[e] = g[e] * term.scaling;  // the gradient of (x A^T) B^T
  });
  if (dB) {
    float* h = cpu::backward_scratch(kHidden, static_cast<size_t>(n * r));
    linear(ctx, x, n, term.lora_A, h, Precision::F32);
    add_transposed_product(ctx, scaled, h, n, out, r, dB);
  }
  multiply(ctx, scaled, n, out, static_cast<const float*>(term.lora_B.data), r, dh);
  if (dA) add_transposed_product(ctx, dh, x, n, r, in, dA);
  if (dx_lora) {
    float* product = cpu::backward_scratch(kProduct, static_cast<size_t>(n * in));
    multiply(ctx, dh, n, r, static_cast<const float*>(term.lora_A.data), in, product);
    add_to(ctx, product, n * in, dx_lora);
  }
}

}  // namespace

bool LinearGrads::any() const { return weight || bias || lora_A || lora_B || magnitude; }

void LinearGrads::check(const WeightMatrix& w) const {
  if (weight && w.dtype != DType::F32 && w.dtype != DType::BF16)
    throw_error("internal: linear_backward: no weight gradient for a ", dtype_name(w.dtype), " weight");
  for (int t = 0; t < w.lora.count; ++t) {
    if (!of_term(magnitude, t)) continue;
    const LoraTerm& term = w.lora.terms[t];
    if (!term.dora_scale || !term.dora_norm)
      throw_error("internal: linear_backward: a magnitude gradient for LoRA term ", t, " without DoRA scale and norm");
  }
}

void linear_backward(const Context& ctx, const float* x, int64_t n, const WeightMatrix& w, const float* dy, float* dx,
                     bool accumulate_dx, const LinearGrads& grads) {
  lora::check_terms(w);
  grads.check(w);
  if (n <= 0) return;
  const int64_t out = w.rows, in = w.cols;
  if (grads.bias) add_column_sums(ctx, dy, nullptr, n, out, nullptr, grads.bias);
  // g: the gradient of z_t (reference_backward.cpp), walked from the last term back to z_0 = x W^T; a copy only
  // when a DoRA term rescales it.
  bool has_dora = false;
  for (int t = 0; t < w.lora.count; ++t) has_dora = has_dora || w.lora.terms[t].dora_scale;
  float* g_mutable = has_dora ? cpu::backward_scratch(kGrad, static_cast<size_t>(n * out)) : nullptr;
  if (has_dora) std::copy(dy, dy + n * out, g_mutable);
  const float* g = has_dora ? g_mutable : dy;
  const std::vector<std::vector<float>> dora_in = dora_inputs(ctx, x, n, w, grads);
  float* dx_lora = dx && w.lora.count ? cpu::backward_scratch(kDxLora, static_cast<size_t>(n * in)) : nullptr;
  if (dx_lora) std::fill(dx_lora, dx_lora + n * in, 0.f);
  for (int t = w.lora.count - 1; t >= 0; --t) {
    const LoraTerm& term = w.lora.terms[t];
    if (term.dora_scale) {
      if (float* dm = LinearGrads::of_term(grads.magnitude, t))
        add_column_sums(ctx, g, dora_in[t].data(), n, out, term.dora_norm, dm);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < out; ++j) g_mutable[i * out + j] *= term.dora_scale[j];
    }
    float* dA = LinearGrads::of_term(grads.lora_A, t);
    float* dB = LinearGrads::of_term(grads.lora_B, t);
    if (dA || dB || dx) lora_term_backward(ctx, x, n, w, term, g, dA, dB, dx_lora);
  }
  if (grads.weight) {
    if (w.layout == WeightLayout::OutIn) add_transposed_product(ctx, g, x, n, out, in, grads.weight);
    else add_transposed_product(ctx, x, g, n, in, out, grads.weight);
  }
  if (!dx) return;
  if (!accumulate_dx && !dx_lora) return times_weight(ctx, g, n, w, dx);
  float* product = cpu::backward_scratch(kDxProduct, static_cast<size_t>(n * in));
  times_weight(ctx, g, n, w, product);
  cpu::for_ranges(ctx, n * in, 64, cpu::kMinParallelElements, [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e) {
      const float sum = dx_lora ? dx_lora[e] + product[e] : product[e];
      dx[e] = accumulate_dx ? dx[e] + sum : sum;
    }
  });
}

}  // namespace ops
}  // namespace qwen3vl
