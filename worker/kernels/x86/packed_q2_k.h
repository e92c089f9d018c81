#pragma once
// Q2_K Layout::Packed8 kernels (packed.h has the layout), shared by the AVX2 and AVX-512 VNNI
// sources. Per sub-block j (plane s = j / 4 of chunks 4q..4q+3, q = j % 4) the 4 pieces of 2-bit
// weights x token: on AVX2 summed in 16 bits (at most 4 * 2 * 3 * 127 = 3048) and widened by a
// multiply-add with the rows' scale in both halves of the lane; with VNNI 4 dpbusd into 32 bits
// times the scale. Both exact, so the same integers. The mins (int16 pairs) against the token's
// sub-block sums by one multiply-add per pair; then t = d * isum - dmin * msum and
// acc += t * d_token, the scalar reference's float steps (packed.cpp), so the same bits.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "worker/kernels/blocks.h"
#include "worker/kernels/half.h"
#include "worker/kernels/packed.h"
#include "worker/kernels/x86/packed_rows8.h"

namespace clusterctl::kernels::detail::x86 {

inline __m256i q2_K_piece(const int8_t* q) { return _mm256_broadcastd_epi32(_mm_loadu_si32(q)); }

inline __m256 q2_K_fold(const uint8_t* g, __m256i isum, __m256i msum, float d_token, __m256 acc) {
  const auto halves = [](const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  };
  const __m256 t =
      _mm256_fnmadd_ps(halves(g + 16), _mm256_cvtepi32_ps(msum), _mm256_mul_ps(halves(g), _mm256_cvtepi32_ps(isum)));
  return _mm256_fmadd_ps(t, _mm256_set1_ps(d_token), acc);
}

// One sub-block's dot times its scale per row lane; scale_pairs holds the scale in both 16-bit
// halves of the lane (q2_K_scale_pairs), the low half of which is the 32-bit scale for VNNI.
template <bool Vnni>
__attribute__((always_inline)) inline __m256i q2_K_sub_block(const __m256i w[4], const int8_t* q8,
                                                             __m256i scale_pairs) {
  if constexpr (Vnni) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    __m256i d = _mm256_setzero_si256();
    for (int k = 0; k < 4; ++k) d = _mm256_dpbusd_epi32(d, w[k], q2_K_piece(q8 + 4 * k));
    return _mm256_mullo_epi32(d, _mm256_and_si256(scale_pairs, _mm256_set1_epi32(0xffff)));
#endif
  }
  __m256i sum = _mm256_setzero_si256();  // 16-bit
  for (int k = 0; k < 4; ++k) sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(w[k], q2_K_piece(q8 + 4 * k)));
  return _mm256_madd_epi16(sum, scale_pairs);
}

// Scale (min_shift 0) or min (4) of sub-block j for the 8 rows in both 16-bit halves of each lane.
inline __m256i q2_K_scale_pairs(const uint8_t* g, int j) {
  const __m128i b = _mm_and_si128(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(g + kPackedQ2_KScales + 8 * j)),
                                  _mm_set1_epi8(0x0f));
  const __m256i s = _mm256_cvtepu8_epi32(b);
  return _mm256_or_si256(s, _mm256_slli_epi32(s, 16));
}
// The mins of sub-blocks 2p and 2p + 1 (pair[0]) and 2p + 2, 2p + 3 (pair[1]), p even, as an int16
// pair per row lane: one 32-byte load of 4 sub-blocks' scale bytes, each 128-bit half's two rows
// of 8 interleaved.
inline void q2_K_min_pairs4(const uint8_t* g, int p, __m256i pair[2]) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + kPackedQ2_KScales + 16 * p));
  const __m256i m = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0f));
  const __m256i inter = _mm256_unpacklo_epi8(m, _mm256_srli_si256(m, 8));
  pair[0] = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(inter));
  pair[1] = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(inter, 1));
}
inline __m256i q2_K_chunk(const uint8_t* g, int c) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + kPackedQ2_KQuants + 32 * c));
}

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
// VNNI decoding: plane s of a chunk is masked in place (3 << 2s), not shifted down, so its dot
// is 4^s times the 2-bit one (at most 4 * 4 * 192 * 127 per sub-block, times a scale of 15 and
// 4 sub-blocks per plane: below 2^31); each plane sums into its own register and is shifted
// back by 2s at the end (exact: every term is a multiple of 4^s). The same integers as the
// shifting kernels, with half the byte operations.
// Sub-block j's scales of the 8 rows as 32-bit lanes.
inline __m256i q2_K_scales_vnni(const uint8_t* g, int j) {
  return _mm256_and_si256(
      _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(g + kPackedQ2_KScales + 8 * j))),
      _mm256_set1_epi32(0x0f));
}
inline __m256i q2_K_isum_vnni(const uint8_t* g, const block_q8_K& b) {
  __m256i plane[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
  for (int q = 0; q < 4; ++q) {
    __m256i ch[4];
    for (int k = 0; k < 4; ++k) ch[k] = q2_K_chunk(g, 4 * q + k);
    for (int s = 0; s < 4; ++s) {
      const __m256i mask = _mm256_set1_epi8(static_cast<char>(3 << (2 * s)));
      const int8_t* q8 = b.qs + 64 * s + 16 * q;
      __m256i d = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_and_si256(ch[0], mask), q2_K_piece(q8));
      for (int k = 1; k < 4; ++k) d = _mm256_dpbusd_epi32(d, _mm256_and_si256(ch[k], mask), q2_K_piece(q8 + 4 * k));
      const __m256i sc = q2_K_scales_vnni(g, 4 * s + q);
      plane[s] = _mm256_add_epi32(plane[s], _mm256_mullo_epi32(d, sc));
    }
  }
  return _mm256_add_epi32(_mm256_add_epi32(plane[0], _mm256_srai_epi32(plane[1], 2)),
                          _mm256_add_epi32(_mm256_srai_epi32(plane[2], 4), _mm256_srai_epi32(plane[3], 6)));
}
#endif

// The block math for Rows8Kernels (packed_rows8.h): T tokens against one group's block, each
// group's weights unpacked once for all of them; one token (decoding) is T = 1.
template <bool Vnni>
struct Q2_K {
  using Act = block_q8_K;
  static constexpr int64_t kCols = QK_K;
  static constexpr size_t kBlockBytes = kPackedQ2_KBlockBytes;
  static constexpr int kXoff = kPackedQ2_KXoff;

  // isum[t]: the sum over sub-blocks of scale * (2-bit weights x token t).
  template <int T>
  __attribute__((always_inline)) static void weight_sums(const uint8_t* g, const Act* const* b, __m256i* isum) {
    for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    if constexpr (Vnni && T == 1) {
      isum[0] = q2_K_isum_vnni(g, *b[0]);
    } else if constexpr (Vnni) {  // plane by plane, masked in place (q2_K_isum_vnni)
      for (int s = 0; s < 4; ++s) {
        const __m256i mask = _mm256_set1_epi8(static_cast<char>(3 << (2 * s)));
        __m256i plane[T];
        for (int t = 0; t < T; ++t) plane[t] = _mm256_setzero_si256();
        for (int q = 0; q < 4; ++q) {
          __m256i w[4];
          for (int k = 0; k < 4; ++k) w[k] = _mm256_and_si256(q2_K_chunk(g, 4 * q + k), mask);
          const __m256i sc = q2_K_scales_vnni(g, 4 * s + q);
          for (int t = 0; t < T; ++t) {
            const int8_t* q8 = b[t]->qs + 64 * s + 16 * q;
            __m256i d = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w[0], q2_K_piece(q8));
            for (int k = 1; k < 4; ++k) d = _mm256_dpbusd_epi32(d, w[k], q2_K_piece(q8 + 4 * k));
            plane[t] = _mm256_add_epi32(plane[t], _mm256_mullo_epi32(d, sc));
          }
        }
        for (int t = 0; t < T; ++t) isum[t] = _mm256_add_epi32(isum[t], _mm256_srai_epi32(plane[t], 2 * s));
      }
    }
#endif
    if constexpr (!Vnni) {
      const __m256i m3 = _mm256_set1_epi8(3);
      for (int q = 0; q < 4; ++q) {
        __m256i ch[4];
        for (int k = 0; k < 4; ++k) ch[k] = q2_K_chunk(g, 4 * q + k);
        for (int s = 0; s < 4; ++s) {
          __m256i w[4];
          for (int k = 0; k < 4; ++k) w[k] = _mm256_and_si256(_mm256_srli_epi16(ch[k], 2 * s), m3);
          const __m256i sc = q2_K_scale_pairs(g, 4 * s + q);
          for (int t = 0; t < T; ++t)
            isum[t] = _mm256_add_epi32(isum[t], q2_K_sub_block<Vnni>(w, b[t]->qs + 64 * s + 16 * q, sc));
        }
      }
    }
  }

  template <int T>
  __attribute__((always_inline)) static void block(const uint8_t* g, const Act* const* b, const int32_t* const* pairs,
                                                   __m256* acc) {
    __m256i isum[T], msum[T];
    weight_sums<T>(g, b, isum);
    for (int t = 0; t < T; ++t) msum[t] = _mm256_setzero_si256();
    for (int p = 0; p < 8; p += 2) {
      __m256i mins[2];
      q2_K_min_pairs4(g, p, mins);
      for (int t = 0; t < T; ++t)
        msum[t] =
            _mm256_add_epi32(msum[t], _mm256_add_epi32(_mm256_madd_epi16(mins[0], _mm256_set1_epi32(pairs[t][p])),
                                                       _mm256_madd_epi16(mins[1], _mm256_set1_epi32(pairs[t][p + 1]))));
    }
    for (int t = 0; t < T; ++t) acc[t] = q2_K_fold(g, isum[t], msum[t], b[t]->d, acc[t]);
  }
};

}  // namespace clusterctl::kernels::detail::x86
