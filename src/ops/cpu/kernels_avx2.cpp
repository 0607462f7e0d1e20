// The AVX2 kernel set (AVX2 + FMA + F16C). This file alone is compiled with those flags (CMakeLists.txt); nothing
// here is reachable unless detect_isa() found the instructions.
#include "ops/cpu/kernels.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include <cstring>

namespace qwen3vl {
namespace ops {
namespace cpu {
namespace avx2 {

#include "ops/cpu/simd_avx2.inc"

#define QWEN3VL_BF16_DOT 0
#include "ops/cpu/kernels_impl.inc"
#undef QWEN3VL_BF16_DOT

}  // namespace avx2

bool fill_avx2_kernels(Kernels& kernels) {
  avx2::fill_kernels(kernels);
  return true;
}

}  // namespace cpu
}  // namespace ops
}  // namespace qwen3vl

#else

namespace qwen3vl {
namespace ops {
namespace cpu {
bool fill_avx2_kernels(Kernels&) { return false; }
}  // namespace cpu
}  // namespace ops
}  // namespace qwen3vl

#endif
