#pragma once
// IQ4_XS Layout::Packed8 kernels (packed.h has the layout), shared by the AVX2 and AVX-512 VNNI
// sources. Each chunk's nibbles go through kValuesIq4nl by one byte shuffle per half:
//   AVX2: as signed bytes, |w| x (token with w's sign) by maddubs (a pair at most 2 * 127 * 127,
//         no saturation), widened per piece by a multiply-add with the rows' sub-block scale in
//         both 16-bit halves of the lane, which also scales; xoff is unused;
//   VNNI: +128 (unsigned) x token by dpbusd into 32 bits, less xoff (128 * the token's sub-block
//         sum), times the scale.
// Both are the exact integer sum over sub-blocks of scale * dot, then acc += isum * (d * d_token)
// with one fma: the scalar reference's steps (packed_iq4_xs.cpp), so the same bits.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "worker/kernels/blocks.h"
#include "worker/kernels/packed.h"
#include "worker/kernels/x86/packed_rows8.h"

namespace clusterctl::kernels::detail::x86 {

// The 16 table values, +128 for VNNI's unsigned operand, in both 128-bit halves.
template <bool Vnni>
inline __m256i iq4_xs_table() {
  __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kValuesIq4nl));
  if constexpr (Vnni) t = _mm_add_epi8(t, _mm_set1_epi8(char(0x80)));
  return _mm256_broadcastsi128_si256(t);
}

inline __m256i iq4_xs_piece(const int8_t* q) { return _mm256_broadcastd_epi32(_mm_loadu_si32(q)); }

// Sub-block ib's scales of the 8 rows: for AVX2 in both 16-bit halves of each lane, for VNNI as
// 32-bit lanes.
template <bool Vnni>
inline __m256i iq4_xs_scales(const uint8_t* g, int ib) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(g + kPackedIq4XsScales + 8 * ib));
  if constexpr (Vnni) return _mm256_cvtepi8_epi32(b);
  const __m128i s = _mm_cvtepi8_epi16(b);
  return _mm256_set_m128i(_mm_unpackhi_epi16(s, s), _mm_unpacklo_epi16(s, s));
}

// Chunk (ib, j) of the 8 rows as table values: low nibbles (elements 32ib+4j..) and high ones (32ib+16+4j..).
struct Iq4XsChunk {
  __m256i lo, hi;
};
inline Iq4XsChunk iq4_xs_chunk_values(const uint8_t* g, int ib, int j, __m256i table) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + iq4_xs_chunk(ib, j)));
  return {_mm256_shuffle_epi8(table, _mm256_and_si256(c, m4)),
          _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(c, 4), m4))};
}

// AVX2: one 4-byte piece of 8 rows (signed values w, |w| given) against the token's, times the
// scale pairs, in 32 bits.
inline __m256i iq4_xs_scaled_piece(__m256i w, __m256i abs_w, const int8_t* q, __m256i scale_pairs) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(iq4_xs_piece(q), w)), scale_pairs);
}

template <bool Vnni>
__attribute__((always_inline)) inline __m256i iq4_xs_sub_block(const uint8_t* g, int ib, const int8_t* q8, int32_t xoff,
                                                               __m256i table) {
  const __m256i sc = iq4_xs_scales<Vnni>(g, ib);
  if constexpr (Vnni) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const Iq4XsChunk w = iq4_xs_chunk_values(g, ib, j, table);
      lo = _mm256_dpbusd_epi32(lo, w.lo, iq4_xs_piece(q8 + 4 * j));
      hi = _mm256_dpbusd_epi32(hi, w.hi, iq4_xs_piece(q8 + 16 + 4 * j));
    }
    return _mm256_mullo_epi32(_mm256_sub_epi32(_mm256_add_epi32(lo, hi), _mm256_set1_epi32(xoff)), sc);
#endif
  }
  (void)xoff;
  __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
  for (int j = 0; j < 4; ++j) {
    const Iq4XsChunk w = iq4_xs_chunk_values(g, ib, j, table);
    lo = _mm256_add_epi32(lo, iq4_xs_scaled_piece(w.lo, _mm256_sign_epi8(w.lo, w.lo), q8 + 4 * j, sc));
    hi = _mm256_add_epi32(hi, iq4_xs_scaled_piece(w.hi, _mm256_sign_epi8(w.hi, w.hi), q8 + 16 + 4 * j, sc));
  }
  return _mm256_add_epi32(lo, hi);
}

inline __m256 iq4_xs_fold(const uint8_t* g, __m256i isum, float d_token, __m256 acc) {
  const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, _mm256_set1_ps(d_token)), acc);
}

// The block math for Rows8Kernels (packed_rows8.h).
template <bool Vnni>
struct Iq4Xs {
  using Act = block_q8_K;
  static constexpr int64_t kCols = QK_K;
  static constexpr size_t kBlockBytes = kPackedIq4XsBlockBytes;
  static constexpr int kXoff = kPackedIq4XsXoff;

  // One token: even and odd sub-blocks in two chains (half the latency).
  __attribute__((always_inline)) static __m256 decode(const uint8_t* g, const Act& b, const int32_t* xoff, __m256 acc) {
    const __m256i table = iq4_xs_table<Vnni>();
    __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ib += 2) {
      even = _mm256_add_epi32(even, iq4_xs_sub_block<Vnni>(g, ib, b.qs + 32 * ib, xoff[ib], table));
      odd = _mm256_add_epi32(odd, iq4_xs_sub_block<Vnni>(g, ib + 1, b.qs + 32 * (ib + 1), xoff[ib + 1], table));
    }
    return iq4_xs_fold(g, _mm256_add_epi32(even, odd), b.d, acc);
  }

  // Prompt tokens: each chunk's values (and for AVX2 their magnitudes) once for all T tokens.
  template <int T>
  __attribute__((always_inline)) static void block(const uint8_t* g, const Act* const* b, const int32_t* const* xoff,
                                                   __m256* acc) {
    const __m256i table = iq4_xs_table<Vnni>();
    __m256i isum[T];
    for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ++ib) {
      const __m256i sc = iq4_xs_scales<Vnni>(g, ib);
      __m256i dot[T];
      for (int t = 0; t < T; ++t) dot[t] = _mm256_setzero_si256();
      for (int j = 0; j < 4; ++j) {
        const Iq4XsChunk w = iq4_xs_chunk_values(g, ib, j, table);
        if constexpr (Vnni) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
          for (int t = 0; t < T; ++t) {
            const int8_t* q = b[t]->qs + 32 * ib + 4 * j;
            dot[t] =
                _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(dot[t], w.lo, iq4_xs_piece(q)), w.hi, iq4_xs_piece(q + 16));
          }
#endif
        } else {
          const __m256i abs_lo = _mm256_sign_epi8(w.lo, w.lo), abs_hi = _mm256_sign_epi8(w.hi, w.hi);
          for (int t = 0; t < T; ++t) {
            const int8_t* q = b[t]->qs + 32 * ib + 4 * j;
            dot[t] = _mm256_add_epi32(_mm256_add_epi32(dot[t], iq4_xs_scaled_piece(w.lo, abs_lo, q, sc)),
                                      iq4_xs_scaled_piece(w.hi, abs_hi, q + 16, sc));
          }
        }
      }
      for (int t = 0; t < T; ++t) {
        if constexpr (Vnni) dot[t] = _mm256_mullo_epi32(_mm256_sub_epi32(dot[t], _mm256_set1_epi32(xoff[t][ib])), sc);
        isum[t] = _mm256_add_epi32(isum[t], dot[t]);
      }
    }
    for (int t = 0; t < T; ++t) acc[t] = iq4_xs_fold(g, isum[t], b[t]->d, acc[t]);
  }
};

}  // namespace clusterctl::kernels::detail::x86
