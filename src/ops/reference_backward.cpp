// Scalar reference implementations of the backward ops (ops/backward.h): plain loops in the order the formulas
// read, float inputs and outputs with double accumulators, the ground truth the dispatched versions are tested
// against.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "ops/backward.h"
#include "ops/lora.h"
#include "ops/quant.h"

namespace qwen3vl {
namespace ops {
namespace reference {
namespace {

float weight_at(const WeightVector& w, int64_t i) {
  float value;
  convert_to_f32(w.dtype, static_cast<const uint8_t*>(w.data) + i * dtype_size(w.dtype), &value, 1);
  return value;
}

std::vector<float> vector_floats(const WeightVector& w) {
  std::vector<float> values(static_cast<size_t>(w.size));
  for (int64_t i = 0; i < w.size; ++i) values[i] = weight_at(w, i);
  return values;
}

// The weight as float [rows, cols] (out-major whatever its layout; quantized formats dequantized).
std::vector<float> dense_out_in(const WeightMatrix& w) {
  std::vector<float> dense(static_cast<size_t>(w.rows * w.cols));
  if (is_quantized(w.dtype)) {
    for (int64_t j = 0; j < w.rows; ++j) dequantize_row(w, j, dense.data() + j * w.cols);
    return dense;
  }
  if (w.layout == WeightLayout::OutIn) {
    convert_to_f32(w.dtype, w.data, dense.data(), dense.size());
    return dense;
  }
  std::vector<float> stored(dense.size());  // [cols, rows]
  convert_to_f32(w.dtype, w.data, stored.data(), stored.size());
  for (int64_t k = 0; k < w.cols; ++k)
    for (int64_t j = 0; j < w.rows; ++j) dense[j * w.cols + k] = stored[k * w.rows + j];
  return dense;
}

// c[m, p] (+)= sum_k a[m, k] * b[k, p].
void multiply(const float* a, const float* b, int64_t m, int64_t k, int64_t p, float* c, bool accumulate) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < p; ++j) {
      double sum = 0.0;
      for (int64_t l = 0; l < k; ++l) sum += static_cast<double>(a[i * k + l]) * b[l * p + j];
      c[i * p + j] = static_cast<float>(accumulate ? c[i * p + j] + sum : sum);
    }
}

// c[p, q] += sum_i a[i, p] * b[i, q] (a [m, p], b [m, q]): the weight-gradient shape dy^T x.
void add_transposed_product(const float* a, const float* b, int64_t m, int64_t p, int64_t q, float* c) {
  for (int64_t j = 0; j < p; ++j)
    for (int64_t l = 0; l < q; ++l) {
      double sum = 0.0;
      for (int64_t i = 0; i < m; ++i) sum += static_cast<double>(a[i * p + j]) * b[i * q + l];
      c[j * q + l] = static_cast<float>(c[j * q + l] + sum);
    }
}

WeightMatrix without_lora(const WeightMatrix& w) {
  WeightMatrix base = w;
  base.lora = {};
  return base;
}

// The input of each DoRA term's scale, z_{t-1} + s_t B_t A_t x, where z is the chain the forward builds without
// the bias: z_0 = x W^T, z_t = z_{t-1} + s_t B_t A_t x (LoRA) or f_t (z_{t-1} + s_t B_t A_t x) (DoRA). Empty for
// the terms whose magnitude gradient is not wanted.
std::vector<std::vector<float>> dora_inputs(const float* x, int64_t n, const WeightMatrix& w,
                                            const LinearGrads& grads) {
  const LoraTerms& lora = w.lora;
  std::vector<std::vector<float>> inputs(static_cast<size_t>(lora.count));
  bool wanted = false;
  for (int t = 0; t < lora.count; ++t) wanted = wanted || LinearGrads::of_term(grads.magnitude, t);
  if (!wanted) return inputs;
  const int64_t out = w.rows;
  std::vector<float> z(static_cast<size_t>(n * out));
  linear(x, n, without_lora(w), z.data(), Precision::F32);
  for (int t = 0; t < lora.count; ++t) {
    const LoraTerm& term = lora.terms[t];
    std::vector<float> h(static_cast<size_t>(n * term.lora_A.rows)), delta(z.size());
    linear(x, n, term.lora_A, h.data(), Precision::F32);
    linear(h.data(), n, term.lora_B, delta.data(), Precision::F32);
    for (size_t e = 0; e < z.size(); ++e) z[e] += delta[e] * term.scaling;
    if (LinearGrads::of_term(grads.magnitude, t)) inputs[t] = z;
    if (term.dora_scale)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < out; ++j) z[i * out + j] *= term.dora_scale[j];
  }
  return inputs;
}

}  // namespace

void linear_backward(const float* x, int64_t n, const WeightMatrix& w, const float* dy, float* dx, bool accumulate_dx,
                     const LinearGrads& grads) {
  lora::check_terms(w);
  grads.check(w);
  const int64_t out = w.rows, in = w.cols;
  if (grads.bias)
    for (int64_t j = 0; j < out; ++j) {
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) sum += dy[i * out + j];
      grads.bias[j] = static_cast<float>(grads.bias[j] + sum);
    }
  const std::vector<std::vector<float>> dora_in = dora_inputs(x, n, w, grads);
  // g: the gradient of z_t, walked from the last term back to z_0 = x W^T (the bias adds outside the chain).
  std::vector<float> g(dy, dy + n * out);
  std::vector<float> dx_lora(dx ? static_cast<size_t>(n * in) : 0, 0.f);
  for (int t = w.lora.count - 1; t >= 0; --t) {
    const LoraTerm& term = w.lora.terms[t];
    const int64_t r = term.lora_A.rows;
    if (term.dora_scale) {
      if (float* dm = LinearGrads::of_term(grads.magnitude, t))
        for (int64_t j = 0; j < out; ++j) {
          double sum = 0.0;
          for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(g[i * out + j]) * dora_in[t][i * out + j];
          dm[j] = static_cast<float>(dm[j] + sum / term.dora_norm[j]);
        }
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < out; ++j) g[i * out + j] *= term.dora_scale[j];
    }
    float* dA = LinearGrads::of_term(grads.lora_A, t);
    float* dB = LinearGrads::of_term(grads.lora_B, t);
    if (!dA && !dB && !dx) continue;
    // dt = s * g is the gradient of t = (x A^T) B^T.
    std::vector<float> scaled(g.size()), dh(static_cast<size_t>(n * r));
    for (size_t e = 0; e < g.size(); ++e) scaled[e] = g[e] * term.scaling;
    if (dB) {
      std::vector<float> h(static_cast<size_t>(n * r));
      linear(x, n, term.lora_A, h.data(), Precision::F32);
      add_transposed_product(scaled.data(), h.data(), n, out, r, dB);
    }
    const std::vector<float> a = dense_out_in(term.lora_A), b = dense_out_in(term.lora_B);
    multiply(scaled.data(), b.data(), n, out, r, dh.data(), false);
    if (dA) add_transposed_product(dh.data(), x, n, r, in, dA);
    if (dx) multiply(dh.data(), a.data(), n, r, in, dx_lora.data(), true);
  }
  if (grads.weight) {
    if (w.layout == WeightLayout::OutIn) add_transposed_product(g.data(), x, n, out, in, grads.weight);
    else add_transposed_product(x, g.data(), n, in, out, grads.weight);
  }
  if (!dx) return;
  const std::vector<float> dense = dense_out_in(w);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < in; ++k) {
      double sum = dx_lora[i * in + k];
      for (int64_t j = 0; j < out; ++j) sum += static_cast<double>(g[i * out + j]) * dense[j * in + k];
      float& target = dx[i * in + k];
      target = static_cast<float>(accumulate_dx ? target + sum : sum);
    }
}

void rms_norm_backward(const float* x, int64_t rows, int64_t dim, const WeightVector& weight, float eps,
                       const float* dy, float* dx, float* dweight) {
  const std::vector<float> w = vector_floats(weight);
  for (int64_t row = 0; row < rows; ++row) {
    const float* in = x + row * dim;
    const float* g = dy + row * dim;
    float sum_squares = 0.f;  // the forward's inverse rms, bit for bit
    for (int64_t d = 0; d < dim; ++d) sum_squares += in[d] * in[d];
    const float inv_rms = 1.0f / std::sqrt(sum_squares / static_cast<float>(dim) + eps);
    if (dweight)
      for (int64_t d = 0; d < dim; ++d) dweight[d] += g[d] * (in[d] * inv_rms);
    if (!dx) continue;
    double dot = 0.0;  // sum (dy w) x
    for (int64_t d = 0; d < dim; ++d) dot += static_cast<double>(g[d] * w[d]) * in[d];
    const double r = inv_rms;
    const double coefficient = r * r * r * dot / static_cast<double>(dim);
    for (int64_t d = 0; d < dim; ++d)
      dx[row * dim + d] = static_cast<float>(r * (g[d] * w[d]) - in[d] * coefficient);
  }
}

void layer_norm_backward(const float* x, int64_t rows, int64_t dim, const WeightVector& weight,
                         const WeightVector& bias, float eps, const float* dy, float* dx, float* dweight,
                         float* dbias) {
  (void)bias;  // the bias does not enter any gradient
  const std::vector<float> w = vector_floats(weight);
  std::vector<float> xhat(static_cast<size_t>(dim));
  for (int64_t row = 0; row < rows; ++row) {
    const float* in = x + row * dim;
    const float* g = dy + row * dim;
    // The forward's moments (ops/reference.cpp layer_norm): double, rounded to float.
    double sum = 0.0;
    for (int64_t d = 0; d < dim; ++d) sum += in[d];
    const double mean = sum / static_cast<double>(dim);
    double m2 = 0.0;
    for (int64_t d = 0; d < dim; ++d) m2 += (in[d] - mean) * (in[d] - mean);
    const float mean_f = static_cast<float>(mean);
    const float rstd = 1.0f / std::sqrt(static_cast<float>(m2 / static_cast<double>(dim)) + eps);
    for (int64_t d = 0; d < dim; ++d) xhat[d] = (in[d] - mean_f) * rstd;
    for (int64_t d = 0; d < dim; ++d) {
      if (dweight) dweight[d] += g[d] * xhat[d];
      if (dbias) dbias[d] += g[d];
    }
    if (!dx) continue;
    double mean_g = 0.0, mean_g_xhat = 0.0;
    for (int64_t d = 0; d < dim; ++d) {
      mean_g += g[d] * w[d];
      mean_g_xhat += static_cast<double>(g[d] * w[d]) * xhat[d];
    }
    mean_g /= static_cast<double>(dim);
    mean_g_xhat /= static_cast<double>(dim);
    for (int64_t d = 0; d < dim; ++d)
      dx[row * dim + d] = static_cast<float>(rstd * (g[d] * w[d] - mean_g - xhat[d] * mean_g_xhat));
  }
}

// torch's GeluBackward with approximate="tanh" (aten/src/ATen/native/cpu/Activation.cpp GeluBackwardKernelImpl):
// the same kBeta and kKappa as the forward.
void gelu_tanh_backward(const float* x, const float* dy, size_t count, float* dx) {
  const float beta = static_cast<float>(M_SQRT2 * M_2_SQRTPI * 0.5);
  const float kappa = 0.044715f;
  for (size_t i = 0; i < count; ++i) {
    const float v = x[i];
    const float t = std::tanh(beta * (v + kappa * (v * v * v)));
    const float left = 0.5f * (1.0f + t);
    const float right = 0.5f * v * (1.0f - t * t) * beta * (1.0f + 3.0f * kappa * v * v);
    dx[i] = dy[i] * (left + right);
  }
}

// Exact GELU: Phi(x) + x phi(x).
void gelu_erf_backward(const float* x, const float* dy, size_t count, float* dx) {
  const float alpha = static_cast<float>(M_SQRT1_2);
  const float beta = static_cast<float>(M_2_SQRTPI * M_SQRT1_2 * 0.5);  // 1 / sqrt(2 pi)
  for (size_t i = 0; i < count; ++i) {
    const float v = x[i];
    const float cdf = 0.5f * (1.0f + std::erf(v * alpha));
    const float pdf = beta * std::exp(-0.5f * v * v);
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}

void silu_mul_backward(const float* gate, const float* up, const float* dy, size_t count, float* dgate, float* dup) {
  for (size_t i = 0; i < count; ++i) {
    const float g = gate[i], u = up[i], grad = dy[i];
    const float sigmoid = 1.0f / (1.0f + std::exp(-g));
    dgate[i] = grad * u * sigmoid * (1.0f + g * (1.0f - sigmoid));
    dup[i] = grad * (g * sigmoid);
  }
}

void apply_rotary_backward(float* dx, int64_t rows, int64_t heads, int64_t head_dim, const float* cos,
                           const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t row = 0; row < rows; ++row) {
    const float* c = cos + row * head_dim;
    const float* s = sin + row * head_dim;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = dx + (row * heads + h) * head_dim;
      for (int64_t d = 0; d < half; ++d) {
        const float first = v[d], second = v[d + half];
        v[d] = first * c[d] + second * s[d + half];
        v[d + half] = second * c[d + half] - first * s[d];
      }
    }
  }
}

namespace {

float dot(const float* a, const float* b, int64_t count) {
  double sum = 0.0;
  for (int64_t i = 0; i < count; ++i) sum += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(sum);
}

// Softmax of one row of scores in float, in place (max, exp, sum, times the reciprocal, as the forward).
void softmax_row(float* row, int64_t count) {
  float max_value = -INFINITY;
  for (int64_t j = 0; j < count; ++j) max_value = std::max(max_value, row[j]);
  float sum = 0.f;
  for (int64_t j = 0; j < count; ++j) {
    row[j] = std::exp(row[j] - max_value);
    sum += row[j];
  }
  const float inv_sum = 1.0f / sum;
  for (int64_t j = 0; j < count; ++j) row[j] *= inv_sum;
}

}  // namespace

void attention_backward(const float* q, const float* k, const float* v, int64_t n, const int64_t* cu_seqlens,
                        int64_t num_segments, bool causal, const AttentionShape& shape, float scale,
                        const float* dout, float* dq, float* dk, float* dv) {
  const int64_t hd = shape.head_dim;
  const int64_t group = shape.num_heads / shape.num_kv_heads;
  const int64_t q_stride = shape.num_heads * hd, kv_stride = shape.num_kv_heads * hd;
  std::fill(dq, dq + n * q_stride, 0.f);
  std::fill(dk, dk + n * kv_stride, 0.f);
  std::fill(dv, dv + n * kv_stride, 0.f);
  std::vector<float> p, dp;
  for (int64_t s = 0; s < num_segments; ++s) {
    const int64_t begin = cu_seqlens[s], end = cu_seqlens[s + 1];
    for (int64_t i = begin; i < end; ++i) {
      const int64_t keys = (causal ? i + 1 : end) - begin;
      p.resize(static_cast<size_t>(keys));
      dp.resize(static_cast<size_t>(keys));
      for (int64_t h = 0; h < shape.num_heads; ++h) {
        const int64_t kv = h / group;
        const float* qi = q + i * q_stride + h * hd;
        const float* doi = dout + i * q_stride + h * hd;
        for (int64_t j = 0; j < keys; ++j) p[j] = dot(qi, k + (begin + j) * kv_stride + kv * hd, hd) * scale;
        softmax_row(p.data(), keys);
        // dS = P (dP - rowsum(P dP)), dP = dO V^T.
        double row_sum = 0.0;
        for (int64_t j = 0; j < keys; ++j) {
          dp[j] = dot(doi, v + (begin + j) * kv_stride + kv * hd, hd);
          row_sum += static_cast<double>(p[j]) * dp[j];
        }
        float* dqi = dq + i * q_stride + h * hd;
        for (int64_t j = 0; j < keys; ++j) {
          const float ds = static_cast<float>(p[j] * (dp[j] - row_sum)) * scale;
          const float* kj = k + (begin + j) * kv_stride + kv * hd;
          float* dkj = dk + (begin + j) * kv_stride + kv * hd;
          float* dvj = dv + (begin + j) * kv_stride + kv * hd;
          for (int64_t d = 0; d < hd; ++d) {
            dqi[d] += ds * kj[d];
            dkj[d] += ds * qi[d];
            dvj[d] += p[j] * doi[d];
          }
        }
      }
    }
  }
}

double cross_entropy(const float* logits, int64_t rows, int64_t vocab, const int32_t* targets, float grad_scale,
                     float* dlogits, int64_t* count) {
  for (int64_t row = 0; row < rows; ++row)
    if (targets[row] != -100 && (targets[row] < 0 || targets[row] >= vocab))
      throw_error("cross_entropy: target ", targets[row], " of row ", row, " outside [0, ", vocab, ")");
  double loss = 0.0;
  int64_t supervised = 0;
  for (int64_t row = 0; row < rows; ++row) {
    const float* z = logits + row * vocab;
    const int32_t target = targets[row];
    if (target == -100) {
      if (dlogits) std::fill(dlogits + row * vocab, dlogits + (row + 1) * vocab, 0.f);
      continue;
    }
    float max_value = -INFINITY;
    for (int64_t j = 0; j < vocab; ++j) max_value = std::max(max_value, z[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < vocab; ++j) sum += std::exp(static_cast<double>(z[j]) - max_value);
    const double log_sum = max_value + std::log(sum);
    loss += log_sum - z[target];
    ++supervised;
    if (!dlogits) continue;
    float* d = dlogits + row * vocab;  // may alias z: each entry is read before it is written
    for (int64_t j = 0; j < vocab; ++j) {
      const double probability = std::exp(static_cast<double>(z[j]) - log_sum);
      d[j] = static_cast<float>(grad_scale * (probability - (j == target ? 1.0 : 0.0)));
    }
  }
  if (count) *count = supervised;
  return loss;
}

}  // namespace reference
}  // namespace ops
}  // namespace qwen3vl
