#include "train/vml_sqrt.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace qwen3vl {
namespace {

// RSQRTPS of the inputs [1, 2) (first 4096) and [2, 4) (next 4096) by their top 12 mantissa bits.
constexpr uint16_t kRsqrtpsTable[8192] = {
#include "train/vml_sqrt_rsqrtps_table.inc"
};

uint32_t bits_of(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
}

float from_bits(uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

// The table's RSQRTPS for a positive normal input: the input is (1 or 2 + mantissa) * 4^k, the result the table's
// entry / 2^k.
float table_rsqrtps(uint32_t x_bits) {
  const int32_t exponent = static_cast<int32_t>(x_bits >> 23);
  const uint32_t upper_half = (exponent & 1) ? 0u : 1u;  // 127 (odd) is [1, 2), 128 is [2, 4)
  const int32_t quarter_steps = (exponent - (upper_half ? 128 : 127)) / 2;
  const uint32_t entry = kRsqrtpsTable[upper_half * 4096 + ((x_bits >> 11) & 0xfffu)];
  const int32_t y_bits = static_cast<int32_t>(0x3f000000u + (entry << 11)) - quarter_steps * (1 << 23);
  return from_bits(static_cast<uint32_t>(y_bits));
}

// MKL's vector path takes positive normal inputs up to this; zeros, subnormals, the largest floats, infinities,
// NaNs and negatives go to a scalar routine that computes in double.
constexpr uint32_t kFirstFastBits = 0x00800000u;
constexpr uint32_t kLastFastBits = 0x7f7ff000u;

}  // namespace

float vml_generic_sqrt(float x) {
  const uint32_t x_bits = bits_of(x);
  if (x_bits < kFirstFastBits || x_bits > kLastFastBits) return std::sqrt(x);
  // Each line rounds to float on its own (CMakeLists.txt: -ffp-contract=off), as MKL's SSE code does.
  const float y = table_rsqrtps(x_bits);
  const float root = x * y;
  const float half_rsqrt = y * 0.5f;
  const float residual = 0.5f - root * half_rsqrt;
  const float root1 = root * residual + root;
  const float half_rsqrt1 = half_rsqrt * residual + half_rsqrt;
  const float remainder = x - root1 * root1;
  return remainder * half_rsqrt1 + root1;
}

}  // namespace qwen3vl
