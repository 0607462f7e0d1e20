// Shared helpers of the kernel tests (tests/unit/test_kernels_*.cpp): the kernel sets this processor runs, seeded
// data in every weight dtype, and the error bounds the tests state.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"
#include "ops/ops.h"

namespace qwen3vl {
namespace testing {

// Every optimized set the processor can run (the scalar set is the reference itself).
inline std::vector<const ops::cpu::Kernels*> optimized_kernel_sets() {
  std::vector<const ops::cpu::Kernels*> sets;
  for (ops::cpu::Isa isa : {ops::cpu::Isa::Avx512, ops::cpu::Isa::Avx2})
    if (const ops::cpu::Kernels* k = ops::cpu::kernels_for(isa)) sets.push_back(k);
  return sets;
}

inline std::vector<float> random_floats(size_t count, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, scale);
  std::vector<float> values(count);
  for (float& v : values) v = normal(rng);
  return values;
}

inline std::vector<float> rounded_to_bf16(std::vector<float> values) {
  for (float& v : values) v = round_to_bf16(v);
  return values;
}

// A weight stored in `dtype` (values exactly representable, so the reference and the kernels read the same numbers).
struct StoredWeights {
  DType dtype = DType::F32;
  std::vector<uint8_t> bytes;
  const void* data() const { return bytes.data(); }
};

inline StoredWeights store_as(DType dtype, const std::vector<float>& values) {
  StoredWeights w;
  w.dtype = dtype;
  w.bytes.resize(values.size() * dtype_size(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::F32) {
      std::memcpy(w.bytes.data() + 4 * i, &values[i], 4);
    } else {
      const uint16_t bits = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
      std::memcpy(w.bytes.data() + 2 * i, &bits, 2);
    }
  }
  return w;
}

inline bool is_bf16_value(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  return (bits & 0xffffu) == 0;
}

// One bf16 ulp at |v|: the spacing of bf16 values there (8 significant bits).
inline float bf16_ulp(float v) {
  const float a = std::fabs(v);
  if (a < 1e-30f) return 1e-30f;
  return std::ldexp(1.0f, std::ilogb(a) - 7);
}

inline const char* dtype_label(DType d) { return dtype_name(d); }

// Checks y[i, j] of a linear kernel against the reference value: within `bound`, widened by one bf16 ulp in
// Precision::BF16, where the result must also be a bf16 value. Returns the number of failures it reported.
inline int check_linear_output(int64_t i, int64_t j, float expected, float got, double bound, Precision precision) {
  int failures = 0;
  if (precision == Precision::BF16) {
    bound += bf16_ulp(std::max(std::fabs(expected), std::fabs(got)));
    if (!is_bf16_value(got)) {
      ADD_FAILURE() << "y[" << i << "," << j << "] = " << got << " is not a bf16 value";
      ++failures;
    }
  }
  if (!(std::fabs(static_cast<double>(got) - expected) <= bound)) {
    ADD_FAILURE() << "y[" << i << "," << j << "]: got " << got << ", reference " << expected << ", bound " << bound;
    ++failures;
  }
  return failures;
}

}  // namespace testing
}  // namespace qwen3vl
