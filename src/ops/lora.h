// LoRA terms on a linear's result (ops.h, LoraTerm): the arithmetic the reference linear and the dispatched one
// share. They differ only in how lora_A(x) and lora_B(h) are multiplied, which the caller passes in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "ops/ops.h"

namespace qwen3vl {
namespace ops {
namespace lora {

// y[n, w.rows] = x[n, w.cols] · w^T for an F32 OutIn weight, in float (no rounding).
using F32Linear = std::function<void(const float* x, int64_t n, const WeightMatrix& w, float* y)>;

// Throws an internal Error when a term of w.lora does not fit w (lora_A [r, w.cols], lora_B [w.rows, r], both F32
// OutIn without terms of their own).
void check_terms(const WeightMatrix& w);

// Floats of scratch apply() needs: lora_A(x) [n, r] and lora_B(...) [n, w.rows] of the widest term, and the bias.
size_t scratch_floats(int64_t n, const WeightMatrix& w);

// y holds the base layer's result (bias included, rounded per precision). Adds every term of w.lora in float in
// order, then rounds once, as PEFT's Linear.forward loops over its active adapters and casts back to the base dtype.
void apply(const float* x, int64_t n, const WeightMatrix& w, const WeightVector* bias, Precision precision,
           float* scratch, const F32Linear& f32_linear, float* y);

}  // namespace lora
}  // namespace ops
}  // namespace qwen3vl
