// The AVX-512 kernel set (F/BW/VL/DQ + AVX512_BF16 + AVX512_VNNI + FMA + F16C). This file alone is compiled with those flags
// (CMakeLists.txt); nothing here is reachable unless detect_isa() found the instructions.
#include "ops/cpu/kernels.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BF16__) && defined(__AVX512VNNI__)
#include <immintrin.h>

#include <cstring>

namespace qwen3vl {
namespace ops {
namespace cpu {
namespace avx512 {

#include "ops/cpu/simd_avx512.inc"

// acc += a . b over pairs of bf16 (vdpbf16ps): products of bf16 values are exact in float, so with bf16 inputs
// this is float accumulation, like an FMA loop (denormal inputs read as zero).
inline vf bf16_dot(vf acc, vi a, vi b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }

// dst[c] = r0[c] | r1[c] << 16 for c < cols (r1 null: zero), zero for cols <= c < 32.
inline void bf16_interleave_rows(const uint16_t* r0, const uint16_t* r1, int cols, uint32_t* dst) {
  const __mmask32 mask = cols >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << cols) - 1u);
  const vi a = _mm512_maskz_loadu_epi16(mask, r0);
  const vi b = r1 ? _mm512_maskz_loadu_epi16(mask, r1) : _mm512_setzero_si512();
  const vi lo = _mm512_setr_epi32(0 | 32 << 16, 1 | 33 << 16, 2 | 34 << 16, 3 | 35 << 16, 4 | 36 << 16, 5 | 37 << 16,
                                  6 | 38 << 16, 7 | 39 << 16, 8 | 40 << 16, 9 | 41 << 16, 10 | 42 << 16,
                                  11 | 43 << 16, 12 | 44 << 16, 13 | 45 << 16, 14 | 46 << 16, 15 | 47 << 16);
  const vi hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
  _mm512_storeu_si512(dst, _mm512_permutex2var_epi16(a, lo, b));
  _mm512_storeu_si512(dst + 16, _mm512_permutex2var_epi16(a, hi, b));
}

// Transposes 16 rows of 16 32-bit words in registers: r[i] = row i on entry, column i on return.
inline void transpose16x16(vi r[16]) {
  vi t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // Per group g of four rows: u[4g + c] holds, in 128-bit lane L, column 4L + c of rows 4g .. 4g+3.
  vi u[16];
  for (int g = 0; g < 16; g += 4) {
    u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
    u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
    u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
    u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const vi x0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44), x1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xee);
    const vi y0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44), y1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xee);
    r[c] = _mm512_shuffle_i32x4(x0, y0, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(x0, y0, 0xdd);
    r[8 + c] = _mm512_shuffle_i32x4(x1, y1, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(x1, y1, 0xdd);
  }
}

// Panel of an OutIn bf16 weight as pairs: dst[kp][c] = 32-bit word kp of row c (rows of `words` words, stride
// `ld_words`), c < cols (zero past), for all kp < words; 16 x 16 blocks transposed in registers.
inline void transpose_rows_to_panel(const uint32_t* rows, int64_t ld_words, int cols, int64_t words, uint32_t* dst) {
  for (int half = 0; half < 2; ++half) {
    const int row0 = half * 16;
    const int nrows = cols - row0 < 0 ? 0 : cols - row0 > 16 ? 16 : cols - row0;
    for (int64_t kp = 0; kp < words; kp += 16) {
      const int n = words - kp < 16 ? int(words - kp) : 16;
      const __mmask16 mask = lanes(n);
      vi r[16];
      for (int i = 0; i < 16; ++i) {
        // 32 rows a page apart are 32 streams, more than the hardware prefetchers follow: fetch ahead by hand.
        const uint32_t* row = rows + (row0 + i) * ld_words + kp;
        if (i < nrows) _mm_prefetch(reinterpret_cast<const char*>(row) + 512, _MM_HINT_T0);
        r[i] = i < nrows ? _mm512_maskz_loadu_epi32(mask, row) : _mm512_setzero_si512();
      }
      transpose16x16(r);
      for (int i = 0; i < n; ++i) _mm512_storeu_si512(dst + (kp + i) * 32 + row0, r[i]);
    }
  }
}

#define QWEN3VL_BF16_DOT 1
#include "ops/cpu/kernels_impl.inc"
#undef QWEN3VL_BF16_DOT

}  // namespace avx512

bool fill_avx512_kernels(Kernels& kernels) {
  avx512::fill_kernels(kernels);
  return true;
}

}  // namespace cpu
}  // namespace ops
}  // namespace qwen3vl

#else

namespace qwen3vl {
namespace ops {
namespace cpu {
bool fill_avx512_kernels(Kernels&) { return false; }
}  // namespace cpu
}  // namespace ops
}  // namespace qwen3vl

#endif
