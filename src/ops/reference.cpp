// Scalar reference implementations of the op interface: plain loops, easy to read, used as the ground truth
// that every optimized kernel is tested against.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/ops.h"

namespace qwen3vl {
namespace ops {
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

}  // namespace

void linear(const float* x, int64_t n, const WeightMatrix& w, float* y, Precision precision) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  const size_t row_bytes = static_cast<size_t>(w.cols) * dtype_size(w.dtype);
  for (int64_t j = 0; j < w.rows; ++j) {
    convert_to_f32(w.dtype, static_cast<const uint8_t*>(w.data) + j * row_bytes, row.data(), row.size());
    for (int64_t i = 0; i < n; ++i) y[i * w.rows + j] = round_to(precision, dot(x + i * w.cols, row.data(), w.cols));
  }
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

void causal_attention(const float* q, int64_t n, int64_t past, const float* k_cache, const float* v_cache,
                      const AttentionShape& shape, float scale, float* out, Precision precision) {
  const int64_t group = shape.num_heads / shape.num_kv_heads;
  const int64_t hd = shape.head_dim;
  const int64_t kv_stride = shape.num_kv_heads * hd;
  std::vector<float> scores(static_cast<size_t>(past + n));
  std::vector<float> acc(static_cast<size_t>(hd));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t visible = past + i + 1;  // causal: cache rows 0 .. past+i
    for (int64_t h = 0; h < shape.num_heads; ++h) {
      const float* qh = q + (i * shape.num_heads + h) * hd;
      const int64_t kv_head = h / group;
      float max_score = -INFINITY;
      for (int64_t j = 0; j < visible; ++j) {
        const float raw = round_to(precision, dot(qh, k_cache + j * kv_stride + kv_head * hd, hd));
        scores[j] = round_to(precision, raw * scale);
        max_score = std::max(max_score, scores[j]);
      }
      float total = 0.f;
      for (int64_t j = 0; j < visible; ++j) {
        scores[j] = std::exp(scores[j] - max_score);
        total += scores[j];
      }
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t j = 0; j < visible; ++j) {
        const float p = round_to(precision, scores[j] / total);
        const float* vj = v_cache + j * kv_stride + kv_head * hd;
        for (int64_t d = 0; d < hd; ++d) acc[d] += p * vj[d];
      }
      float* o = out + (i * shape.num_heads + h) * hd;
      for (int64_t d = 0; d < hd; ++d) o[d] = round_to(precision, acc[d]);
    }
  }
}

}  // namespace ops
}  // namespace qwen3vl
