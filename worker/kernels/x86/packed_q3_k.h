#pragma once
// Q3_K Layout::Packed8 kernels (packed.h has the layout), shared by the AVX2 and AVX-512 VNNI
// sources. A weight register is q = low | third << 2 (0..7) of 8 rows x 4 elements; per
// sub-block its 4 pieces x token start from the sub-block's xoff (-4 * its token sum, low 16
// bits), so the sum is the sub-block's (q - 4) x token, which fits int16 (at most 4 * 16 * 128).
// On AVX2 the pieces are summed in 16 bits (at most 4 * 2 * 7 * 128 + 8192 = 15360 per half)
// and widened by a multiply-add with the rows' scale in both halves of the lane; with VNNI
// 4 dpbusd into 32 bits whose low half (the sum modulo 2^16, so the sum itself) a multiply-add
// (dpwssd) with the scale in the low half only takes. Both exact, so the same integers; then
// acc += isum * (d * d_token), the scalar reference's float steps (packed_q3_k.cpp), so the
// same bits.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "worker/kernels/blocks.h"
#include "worker/kernels/packed.h"
#include "worker/kernels/x86/packed_rows8.h"

namespace clusterctl::kernels::detail::x86 {

inline __m256i q3_K_piece(const int8_t* q) { return _mm256_broadcastd_epi32(_mm_loadu_si32(q)); }
inline __m256i q3_K_load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

inline __m256 q3_K_fold(const uint8_t* g, __m256i isum, float d_token, __m256 acc) {
  const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, _mm256_set1_ps(d_token)), acc);
}

// Sub-block j's signed scale of the 8 rows: in both 16-bit halves of the lane (AVX2), or in
// the low half with the high half 0 (VNNI).
template <bool Vnni>
inline __m256i q3_K_scales(const uint8_t* g, int j) {
  const __m256i s =
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(g + kPackedQ3_KScales + 8 * j)));
  const __m256i low = _mm256_and_si256(s, _mm256_set1_epi32(0xffff));
  return Vnni ? low : _mm256_or_si256(low, _mm256_slli_epi32(s, 16));
}

// Plane s of chunk k of a run: its 2 low bits from `low` and its third bit (bit 4 * (k % 2) + s
// of `high`) moved to bit 2.
__attribute__((always_inline)) inline __m256i q3_K_weights(__m256i low, __m256i high, int k, int s) {
  const int b = 4 * (k % 2) + s;
  const __m256i l = _mm256_and_si256(s ? _mm256_srli_epi16(low, 2 * s) : low, _mm256_set1_epi8(3));
  const __m256i h = b < 2 ? _mm256_slli_epi16(high, 2 - b) : b > 2 ? _mm256_srli_epi16(high, b - 2) : high;
  return _mm256_or_si256(l, _mm256_and_si256(h, _mm256_set1_epi8(4)));
}

// isum + one sub-block's (q - 4) x token times its scale per row lane: w the 4 pieces' weights,
// q8 the token's 16 quants, start its xoff. VNNI's dpwssd is the multiply-add and the add in one.
template <bool Vnni>
__attribute__((always_inline)) inline __m256i q3_K_sub_block(__m256i isum, const __m256i w[4], const int8_t* q8,
                                                             int32_t start, __m256i scales) {
  __m256i sum = _mm256_set1_epi32(start);
  if constexpr (Vnni) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    for (int k = 0; k < 4; ++k) sum = _mm256_dpbusd_epi32(sum, w[k], q3_K_piece(q8 + 4 * k));
    return _mm256_dpwssd_epi32(isum, sum, scales);
#endif
  }
  for (int k = 0; k < 4; ++k) sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(w[k], q3_K_piece(q8 + 4 * k)));
  return _mm256_add_epi32(isum, _mm256_madd_epi16(sum, scales));
}

// The block math for Rows8Kernels (packed_rows8.h): each sub-block's weights unpacked once for
// the T tokens; one token (decoding) is the same with T = 1.
template <bool Vnni>
struct Q3_K {
  using Act = block_q8_K;
  static constexpr int64_t kCols = QK_K;
  static constexpr size_t kBlockBytes = kPackedQ3_KBlockBytes;
  static constexpr int kXoff = kPackedQ3_KXoff;

  template <int T>
  __attribute__((always_inline)) static void block(const uint8_t* g, const Act* const* b, const int32_t* const* xoff,
                                                   __m256* acc) {
    __m256i isum[T];
    for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
    for (int q = 0; q < 4; ++q) {
      __m256i low[4];
      for (int k = 0; k < 4; ++k) low[k] = q3_K_load(g + q3_K_low_chunk(q, k));
      const __m256i high[2] = {q3_K_load(g + q3_K_high_chunk(q, 0)), q3_K_load(g + q3_K_high_chunk(q, 1))};
      for (int s = 0; s < 4; ++s) {
        __m256i w[4];
        for (int k = 0; k < 4; ++k) w[k] = q3_K_weights(low[k], high[k / 2], k, s);
        const int j = 4 * s + q;
        const __m256i sc = q3_K_scales<Vnni>(g, j);
        for (int t = 0; t < T; ++t) isum[t] = q3_K_sub_block<Vnni>(isum[t], w, b[t]->qs + 16 * j, xoff[t][j], sc);
      }
    }
    for (int t = 0; t < T; ++t) acc[t] = q3_K_fold(g, isum[t], b[t]->d, acc[t]);
  }
};

}  // namespace clusterctl::kernels::detail::x86
