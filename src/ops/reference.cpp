// Scalar reference implementations of the op interface: plain loops, easy to read, used as the ground truth
// that every optimized kernel is tested against.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "ops/ops.h"
#include "ops/lora.h"
#include "ops/quant.h"

namespace qwen3vl {
namespace ops {
namespace reference {
namespace {

// Four independent partial sums: the compiler vectorizes this, and the error stays at float accumulation level.
float dot(const float* a, const float* b, int64_t count) {
  float partial[4] = {0.f, 0.f, 0.f, 0.f};
  int64_t i = 0;
  for (; i + 4 <= count; i += 4) {
    partial[0] += a[i] * b[i];
    partial[1] += a[i + 1] * b[i + 1];
    partial[2] += a[i + 2] * b[i + 2];
    partial[3] += a[i + 3] * b[i + 3];
  }
  float sum = (partial[0] + partial[1]) + (partial[2] + partial[3]);
  for (; i < count; ++i) sum += a[i] * b[i];
  return sum;
}

float weight_at(const WeightVector& w, int64_t i) {
  float value;
  convert_to_f32(w.dtype, static_cast<const uint8_t*>(w.data) + i * dtype_size(w.dtype), &value, 1);
  return value;
}

// exp as PyTorch's vectorized CPU kernels compute it: SLEEF's expf_u10 (Cody-Waite reduction by ln 2, degree-6
// polynomial, fused multiply-adds), not libm's correctly rounded expf, which differs in the last bit for ~10% of
// arguments. Used where bit-exactness with torch's float softmax matters (bf16 probabilities).
float sleef_expf(float d) {
  const float log2e = 1.442695040888963407359924681001892137f;
  const float ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187045e-06f;
  if (d < -104.0f) return 0.0f;
  if (d > 100.0f) return INFINITY;
  const int q = static_cast<int>(std::nearbyint(d * log2e));
  float s = std::fma(static_cast<float>(q), -ln2_hi, d);
  s = std::fma(static_cast<float>(q), -ln2_lo, s);
  float u = 0.000198527617612853646278381f;
  u = std::fma(u, s, 0.00139304355252534151077271f);
  u = std::fma(u, s, 0.00833336077630519866943359f);
  u = std::fma(u, s, 0.0416664853692054748535156f);
  u = std::fma(u, s, 0.166666671633720397949219f);
  u = std::fma(u, s, 0.5f);
  u = 1.0f + std::fma(s * s, u, s);
  return u * std::ldexp(1.0f, q >> 1) * std::ldexp(1.0f, q - (q >> 1));
}

// torch.softmax(x, dim=-1, dtype=float32) of one row as PyTorch's CPU kernel (_vec_softmax_lastdim, AVX512 build:
// 16 float lanes) computes it: e = exp(x - max); sum = lane-wise accumulation of e over 16 lanes (element j into
// lane j % 16; rows shorter than 16 are summed in order) folded pairwise (lane i + lane i+8, then +4, +2, +1);
// result e * (1 / sum). Measured bit-equal to torch's float32 softmax; a plain loop differs in the last bit.
// `row_length` >= count is the length of the row torch reduces: a causal row holds `count` visible scores followed
// by masked ones (score + finfo.min, whose exp is 0), which change nothing but whether the lanes are used.
void softmax_like_torch_cpu(float* row, int64_t count, int64_t row_length) {
  float max_value = -INFINITY;
  for (int64_t j = 0; j < count; ++j) max_value = std::max(max_value, row[j]);
  for (int64_t j = 0; j < count; ++j) row[j] = sleef_expf(row[j] - max_value);
  float sum = row[0];
  if (row_length < 16) {
    for (int64_t j = 1; j < count; ++j) sum += row[j];
  } else {
    float lanes[16] = {};
    std::copy(row, row + std::min<int64_t>(count, 16), lanes);
    for (int64_t j = 16; j < count; ++j) lanes[j % 16] += row[j];
    for (int width = 8; width >= 1; width /= 2)
      for (int i = 0; i < width; ++i) lanes[i] += lanes[i + width];
    sum = lanes[0];
  }
  const float inv_sum = 1.0f / sum;
  for (int64_t j = 0; j < count; ++j) row[j] *= inv_sum;
}

}  // namespace

// An input-major weight W [w.cols = in, w.rows = out]: y[i, :] = sum_k x[i, k] * W[k, :], accumulated in float in y,
// reading each stored row of W once.
static void linear_input_major(const float* x, int64_t n, const WeightMatrix& w, float* y, Precision precision,
                        const WeightVector* bias) {
  std::vector<float> row(static_cast<size_t>(w.rows));
  const size_t row_bytes = static_cast<size_t>(w.rows) * dtype_size(w.dtype);
  std::fill(y, y + n * w.rows, 0.f);
  for (int64_t k = 0; k < w.cols; ++k) {
    convert_to_f32(w.dtype, static_cast<const uint8_t*>(w.data) + k * row_bytes, row.data(), row.size());
    for (int64_t i = 0; i < n; ++i) {
      const float xk = x[i * w.cols + k];
      float* yi = y + i * w.rows;
      for (int64_t j = 0; j < w.rows; ++j) yi[j] += xk * row[j];
    }
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < w.rows; ++j) {
      float& out = y[i * w.rows + j];
      out = round_to(precision, bias ? out + weight_at(*bias, j) : out);
    }
}

// A block-quantized weight (ops/quant.h): x quantized per block of 32, integer dot products per block, scaled by
// w_scale * x_scale and summed in float in block order.
static void linear_quantized(const float* x, int64_t n, const WeightMatrix& w, float* y, Precision precision,
                             const WeightVector* bias) {
  const int64_t blocks = quant_blocks(w.cols);
  std::vector<int8_t> xq(static_cast<size_t>(blocks * kQuantBlock));
  std::vector<float> x_scale(static_cast<size_t>(blocks));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t k0 = b * kQuantBlock;
      const int count = static_cast<int>(std::clamp<int64_t>(w.cols - k0, 0, kQuantBlock));
      x_scale[b] = quantize_x_block(x + i * w.cols + std::min(k0, w.cols), count, xq.data() + k0);
    }
    for (int64_t j = 0; j < w.rows; ++j) {
      float acc = 0.f;
      for (int64_t b = 0; b < blocks; ++b) {
        const float ws = quant_scale(w, j, b);
        int32_t dot = 0;
        for (int64_t k = b * kQuantBlock; k < std::min(w.cols, (b + 1) * kQuantBlock); ++k)
          dot += static_cast<int32_t>(xq[k]) * quant_code(w, j, k);
        acc += (ws * x_scale[b]) * static_cast<float>(dot);
      }
      y[i * w.rows + j] = round_to(precision, bias ? acc + weight_at(*bias, j) : acc);
    }
  }
}

static void linear_base(const float* x, int64_t n, const WeightMatrix& w, float* y, Precision precision,
                        const WeightVector* bias) {
  if (is_quantized(w.dtype)) {
    if (w.layout != WeightLayout::OutIn) throw_error("internal: a quantized weight must be stored out-major");
    return linear_quantized(x, n, w, y, precision, bias);
  }
  if (w.layout == WeightLayout::InOut) return linear_input_major(x, n, w, y, precision, bias);
  std::vector<float> row(static_cast<size_t>(w.cols));
  const size_t row_bytes = static_cast<size_t>(w.cols) * dtype_size(w.dtype);
  for (int64_t j = 0; j < w.rows; ++j) {
    convert_to_f32(w.dtype, static_cast<const uint8_t*>(w.data) + j * row_bytes, row.data(), row.size());
    const float b = bias ? weight_at(*bias, j) : 0.f;
    for (int64_t i = 0; i < n; ++i) {
      const float acc = dot(x + i * w.cols, row.data(), w.cols);
      y[i * w.rows + j] = round_to(precision, bias ? acc + b : acc);
    }
  }
}

void linear(const float* x, int64_t n, const WeightMatrix& w, float* y, Precision precision,
            const WeightVector* bias) {
  lora::check_terms(w);
  linear_base(x, n, w, y, precision, bias);
  if (w.lora.count == 0) return;
  std::vector<float> scratch(lora::scratch_floats(n, w));
  lora::apply(x, n, w, bias, precision, scratch.data(),
              [](const float* in, int64_t rows, const WeightMatrix& m, float* out) {
                linear_base(in, rows, m, out, Precision::F32, nullptr);
              },
              y);
}

void embedding(const WeightMatrix& table, const int32_t* ids, int64_t n, float* out) {
  const size_t row_bytes = static_cast<size_t>(table.cols) * dtype_size(table.dtype);
  for (int64_t i = 0; i < n; ++i)
    convert_to_f32(table.dtype, static_cast<const uint8_t*>(table.data) + ids[i] * row_bytes, out + i * table.cols,
                   static_cast<size_t>(table.cols));
}

void rms_norm(const float* x, int64_t rows, int64_t dim, const WeightVector& weight, float eps, float* out,
              Precision precision) {
  std::vector<float> scale(static_cast<size_t>(dim));
  for (int64_t d = 0; d < dim; ++d) scale[d] = weight_at(weight, d);
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * dim;
    float sum_squares = 0.f;
    for (int64_t d = 0; d < dim; ++d) sum_squares += in[d] * in[d];
    const float inv_rms = 1.0f / std::sqrt(sum_squares / static_cast<float>(dim) + eps);
    for (int64_t d = 0; d < dim; ++d)
      out[r * dim + d] = round_to(precision, scale[d] * round_to(precision, in[d] * inv_rms));
  }
}

void layer_norm(const float* x, int64_t rows, int64_t dim, const WeightVector& weight, const WeightVector& bias,
                float eps, float* out, Precision precision) {
  std::vector<float> gamma(static_cast<size_t>(dim)), beta(static_cast<size_t>(dim));
  for (int64_t d = 0; d < dim; ++d) {
    gamma[d] = weight_at(weight, d);
    beta[d] = weight_at(bias, d);
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * dim;
    // Row moments in double, rounded to float: as close to PyTorch's float Welford moments as a scalar loop gets.
    double sum = 0.0;
    for (int64_t d = 0; d < dim; ++d) sum += in[d];
    const double mean = sum / static_cast<double>(dim);
    double m2 = 0.0;
    for (int64_t d = 0; d < dim; ++d) m2 += (in[d] - mean) * (in[d] - mean);
    const float mean_f = static_cast<float>(mean);
    const float var_f = static_cast<float>(m2 / static_cast<double>(dim));
    const float rstd = 1.0f / std::sqrt(var_f + eps);
    const float shift = -mean_f * rstd;
    for (int64_t d = 0; d < dim; ++d)
      out[r * dim + d] = round_to(precision, (in[d] * rstd + shift) * gamma[d] + beta[d]);
  }
}

void gelu_tanh(const float* x, size_t count, float* out, Precision precision) {
  const float beta = static_cast<float>(M_SQRT2 * M_2_SQRTPI * 0.5);  // sqrt(2/pi), as PyTorch's kBeta
  const float kappa = 0.044715f;
  for (size_t i = 0; i < count; ++i) {
    const float v = x[i];
    const float inner = beta * (v + kappa * (v * v * v));
    out[i] = round_to(precision, 0.5f * v * (1.0f + std::tanh(inner)));
  }
}

void gelu_erf(const float* x, size_t count, float* out, Precision precision) {
  const float alpha = static_cast<float>(M_SQRT1_2);
  for (size_t i = 0; i < count; ++i)
    out[i] = round_to(precision, x[i] * 0.5f * (1.0f + std::erf(x[i] * alpha)));
}

void add_inplace(float* x, const float* y, size_t count, Precision precision) {
  for (size_t i = 0; i < count; ++i) x[i] = round_to(precision, x[i] + y[i]);
}

void silu_mul(const float* gate, const float* up, size_t count, float* out, Precision precision) {
  for (size_t i = 0; i < count; ++i) {
    const float silu = round_to(precision, gate[i] / (1.0f + std::exp(-gate[i])));
    out[i] = round_to(precision, silu * up[i]);
  }
}

void apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim, const float* cos, const float* sin,
                  Precision precision) {
  const int64_t half = head_dim / 2;
  std::vector<float> rotated(static_cast<size_t>(head_dim));
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = cos + r * head_dim;
    const float* s = sin + r * head_dim;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (r * heads + h) * head_dim;
      for (int64_t d = 0; d < half; ++d) {
        rotated[d] = -v[d + half];
        rotated[d + half] = v[d];
      }
      for (int64_t d = 0; d < head_dim; ++d)
        v[d] = round_to(precision, round_to(precision, v[d] * c[d]) + round_to(precision, rotated[d] * s[d]));
    }
  }
}

void causal_attention(const float* q, int64_t n, int64_t past, const void* k_cache, const void* v_cache,
                      const AttentionShape& shape, float scale, float* out, Precision precision, DType cache_dtype) {
  const int64_t group = shape.num_heads / shape.num_kv_heads;
  const int64_t hd = shape.head_dim;
  const int64_t kv_stride = shape.num_kv_heads * hd;
  const size_t elem = dtype_size(cache_dtype);
  // Cache row j of kv head `kv_head` as floats (a BF16 cache widens exactly).
  std::vector<float> row(static_cast<size_t>(hd));
  auto cache_row = [&](const void* cache, int64_t j, int64_t kv_head) {
    convert_to_f32(cache_dtype, static_cast<const uint8_t*>(cache) + (j * kv_stride + kv_head * hd) * elem,
                   row.data(), static_cast<size_t>(hd));
    return row.data();
  };
  std::vector<float> scores(static_cast<size_t>(past + n));
  std::vector<float> acc(static_cast<size_t>(hd));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t visible = past + i + 1;  // causal: cache rows 0 .. past+i
    for (int64_t h = 0; h < shape.num_heads; ++h) {
      const float* qh = q + (i * shape.num_heads + h) * hd;
      const int64_t kv_head = h / group;
      for (int64_t j = 0; j < visible; ++j) {
        const float raw = round_to(precision, dot(qh, cache_row(k_cache, j, kv_head), hd));
        scores[j] = round_to(precision, raw * scale);
      }
      softmax_like_torch_cpu(scores.data(), visible, past + n);  // the row holds past+n keys, the rest masked
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t j = 0; j < visible; ++j) {
        const float p = round_to(precision, scores[j]);
        const float* vj = cache_row(v_cache, j, kv_head);
        for (int64_t d = 0; d < hd; ++d) acc[d] += p * vj[d];
      }
      float* o = out + (i * shape.num_heads + h) * hd;
      for (int64_t d = 0; d < hd; ++d) o[d] = round_to(precision, acc[d]);
    }
  }
}

void segment_attention(const float* q, const float* k, const float* v, const int64_t* cu_seqlens,
                       int64_t num_segments, const AttentionShape& shape, float scale, float* out,
                       Precision precision) {
  const int64_t group = shape.num_heads / shape.num_kv_heads;
  const int64_t hd = shape.head_dim;
  const int64_t q_stride = shape.num_heads * hd;
  const int64_t kv_stride = shape.num_kv_heads * hd;
  std::vector<float> scores;
  std::vector<float> acc(static_cast<size_t>(hd));
  for (int64_t s = 0; s < num_segments; ++s) {
    const int64_t begin = cu_seqlens[s], end = cu_seqlens[s + 1];
    scores.resize(static_cast<size_t>(end - begin));
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t h = 0; h < shape.num_heads; ++h) {
        const float* qh = q + i * q_stride + h * hd;
        const int64_t kv_head = h / group;
        for (int64_t j = begin; j < end; ++j) {
          const float raw = round_to(precision, dot(qh, k + j * kv_stride + kv_head * hd, hd));
          scores[j - begin] = round_to(precision, raw * scale);
        }
        softmax_like_torch_cpu(scores.data(), end - begin, end - begin);
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t j = begin; j < end; ++j) {
          const float p = round_to(precision, scores[j - begin]);
          const float* vj = v + j * kv_stride + kv_head * hd;
          for (int64_t d = 0; d < hd; ++d) acc[d] += p * vj[d];
        }
        float* o = out + i * q_stride + h * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] = round_to(precision, acc[d]);
      }
    }
  }
}

}  // namespace reference
}  // namespace ops
}  // namespace qwen3vl
