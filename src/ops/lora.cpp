#include "ops/lora.h"

#include <algorithm>

#include "core/error.h"

namespace qwen3vl {
namespace ops {
namespace lora {

void check_terms(const WeightMatrix& w) {
  const LoraTerms& lora = w.lora;
  for (int k = 0; k < lora.count; ++k) {
    const LoraTerm& term = lora.terms[k];
    const WeightMatrix& a = term.lora_A;
    const WeightMatrix& b = term.lora_B;
    if (a.dtype != DType::F32 || b.dtype != DType::F32 || a.layout != WeightLayout::OutIn ||
        b.layout != WeightLayout::OutIn || a.lora.count != 0 || b.lora.count != 0)
      throw_error("internal: LoRA weights must be F32 [out, in]");
    if (a.cols != w.cols || b.rows != w.rows || b.cols != a.rows || a.rows <= 0)
      throw_error("internal: LoRA term of [", a.rows, ", ", a.cols, "] x [", b.rows, ", ", b.cols,
                  "] on a [", w.rows, ", ", w.cols, "] weight");
  }
}

namespace {

int64_t widest_rank(const LoraTerms& lora) {
  int64_t rank = 0;
  for (int k = 0; k < lora.count; ++k) rank = std::max(rank, lora.terms[k].lora_A.rows);
  return rank;
}

bool has_dora(const LoraTerms& lora) {
  for (int k = 0; k < lora.count; ++k)
    if (lora.terms[k].dora_scale) return true;
  return false;
}

}  // namespace

size_t scratch_floats(int64_t n, const WeightMatrix& w) {
  return static_cast<size_t>(n * widest_rank(w.lora) + n * w.rows + w.rows);
}

void apply(const float* x, int64_t n, const WeightMatrix& w, const WeightVector* bias, Precision precision,
           float* scratch, const F32Linear& f32_linear, float* y) {
  const LoraTerms& lora = w.lora;
  if (lora.count == 0 || n <= 0) return;
  const int64_t out = w.rows;
  float* h = scratch;                          // lora_A(x) [n, r]
  float* t = scratch + n * widest_rank(lora);  // lora_B(lora_A(x)) [n, out]
  float* bias_f32 = t + n * out;               // [out], read by DoRA terms only
  if (bias && has_dora(lora)) convert_to_f32(bias->dtype, bias->data, bias_f32, static_cast<size_t>(out));
  for (int k = 0; k < lora.count; ++k) {
    const LoraTerm& term = lora.terms[k];
    f32_linear(x, n, term.lora_A, h);
    f32_linear(h, n, term.lora_B, t);
    const float s = term.scaling;
    if (!term.dora_scale) {
      for (int64_t e = 0; e < n * out; ++e) y[e] = y[e] + t[e] * s;  // result + lora_B(lora_A(x)) * scaling
      continue;
    }
    // DoraLinearLayer.forward: base_result = result - bias, in the base dtype while y still is the base output.
    const bool base_dtype = k == 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < out; ++j) {
        float& value = y[i * out + j];
        const float f = term.dora_scale[j];
        float base_result = bias ? value - bias_f32[j] : value;
        if (base_dtype) base_result = round_to(precision, base_result);
        value = value + ((f - 1.0f) * base_result + f * t[i * out + j] * s);
      }
  }
  for (int64_t e = 0; e < n * out; ++e) y[e] = round_to(precision, y[e]);
}

}  // namespace lora
}  // namespace ops
}  // namespace qwen3vl
