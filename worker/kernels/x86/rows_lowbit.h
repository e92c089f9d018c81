#pragma once
// AVX2 decode dots for the low-bit types big models ship in (Q2_K, Q3_K, IQ4_XS against Q8_K;
// IQ4_NL against Q8_0). The integer sums are exactly the scalar reference's (rows.cpp) and each
// block's float is formed as there; only the order of the float sums differs (the blocks' sums
// stay in 8 lanes until the end of the row).
// Included by rows_avx2.cpp; the AVX-512 table keeps them.
#include <immintrin.h>

#include <cstring>

#include "worker/kernels/blocks.h"
#include "worker/kernels/half.h"
#include "worker/kernels/quant_ref.h"
#include "worker/kernels/x86/avx2_helpers.h"

namespace clusterctl::kernels::detail::x86 {

// The 8 int16 scales of one half of a block (sub-blocks 8 * half .. + 7) in both 128-bit lanes.
inline __m256i half_scales(__m256i scales16, int half) {
  return half == 0 ? _mm256_permute2x128_si256(scales16, scales16, 0x00)
                   : _mm256_permute2x128_si256(scales16, scales16, 0x11);
}

// From half_scales, scale 2s of the half in every int16 of lane 0 and scale 2s + 1 in lane 1:
// one 128-bit half of a 32-byte quant vector covers 16 elements of sub-block 2s, the other 16
// of sub-block 2s + 1.
inline __m256i scale_pair(__m256i half8, int s) {
  const char lo = static_cast<char>(4 * s), hi = static_cast<char>(4 * s + 2);
  return _mm256_shuffle_epi8(half8, _mm256_setr_epi8(lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1, lo,
                                                     lo + 1, lo, lo + 1, lo, lo + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1,
                                                     hi, hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1));
}

// Q2_K: per (half, shift) 32 two-bit quants (sub-blocks is, is + 1) times 32 activations.
inline float dot_q2_K_avx2(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q2_K*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const __m128i sc_bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].scales));
    const __m256i scales16 = _mm256_cvtepu8_epi16(_mm_and_si128(sc_bytes, _mm_set1_epi8(0x0f)));
    const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc_bytes, 4), _mm_set1_epi8(0x0f)));
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].bsums));
    const int8_t* q8 = b[i].qs;
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs + 32 * half));
      const __m256i sc8 = half_scales(scales16, half);
#pragma GCC unroll 4
      for (int s = 0; s < 4; ++s, q8 += 32) {
        const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
        const __m256i p = _mm256_maddubs_epi16(q2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8)));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(sc8, s)));
      }
    }
    // Per block: d * sumi and dmin * (mins . bsums), both times the activation scale, kept in
    // 8 float lanes until the end of the row.
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * b[i].d), _mm256_cvtepi32_ps(sumi), acc);
    acc_m = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].dmin) * b[i].d),
                            _mm256_cvtepi32_ps(_mm256_madd_epi16(mins16, bsums)), acc_m);
  }
  return hsum(acc) - hsum(acc_m);
}

// The 16 signed scales of a Q3_K block as bytes: q3k_scale (quant_ref.h) for all j at once,
// four 32-bit words at a time (scale j's low nibble and its two high bits land in byte j).
inline __m128i q3k_scales16(const uint8_t* s12) {
  constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  uint32_t u[3];
  std::memcpy(u, s12, 12);
  const uint32_t w0 = (u[0] & kmask2) | (((u[2] >> 0) & kmask1) << 4);
  const uint32_t w1 = (u[1] & kmask2) | (((u[2] >> 2) & kmask1) << 4);
  const uint32_t w2 = ((u[0] >> 4) & kmask2) | (((u[2] >> 4) & kmask1) << 4);
  const uint32_t w3 = ((u[1] >> 4) & kmask2) | (((u[2] >> 6) & kmask1) << 4);
  return _mm_sub_epi8(
      _mm_setr_epi32(static_cast<int>(w0), static_cast<int>(w1), static_cast<int>(w2), static_cast<int>(w3)),
      _mm_set1_epi8(32));
}

// Q3_K: value = low2 - 4 * (high bit clear), so each 32 quants' dot is maddubs(low2, q8) minus
// maddubs(4 where the bit is clear, q8) (both fit int16), times the signed 6-bit scales.
inline float dot_q3_K_avx2(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q3_K*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256 accf = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const __m256i scales16 = _mm256_cvtepi8_epi16(q3k_scales16(a[i].scales));
    const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].hmask));
    const int8_t* q8 = b[i].qs;
    __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs + 32 * half));
      const __m256i sc8 = half_scales(scales16, half);
#pragma GCC unroll 4
      for (int s = 0; s < 4; ++s, q8 += 32) {
        const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8));
        // 4 where the high bit is clear (the value is low2 - 4): low2 . y - 4clear . y.
        const __m256i clear4 = _mm256_slli_epi16(
            _mm256_srli_epi16(_mm256_andnot_si256(hm, _mm256_set1_epi8(static_cast<char>(1 << (4 * half + s)))),
                              4 * half + s),
            2);
        const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
        const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q2, y), _mm256_maddubs_epi16(clear4, y));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, scale_pair(sc8, s)));
      }
    }
    accf = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * b[i].d), _mm256_cvtepi32_ps(acc), accf);
  }
  return hsum(accf);
}

inline __m256i iq4_table() {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kValuesIq4nl)));
}

// 16 bytes of IQ4 nibbles -> 32 signed levels (low nibbles first), times 32 activations as 16
// int16 pair sums.
inline __m256i iq4_pairs(__m256i table, const uint8_t* qs, const int8_t* q8) {
  const __m256i v = _mm256_shuffle_epi8(table, unpack_nibbles(qs));
  const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8));
  return _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(y, v));
}

inline float dot_iq4_nl_avx2(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_iq4_nl*>(w);
  const auto* b = static_cast<const block_q8_0*>(x);
  const __m256i table = iq4_table();
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK4_NL; ++i) {
    const __m256i d = _mm256_madd_epi16(iq4_pairs(table, a[i].qs, b[i].qs), ones);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), acc);
  }
  return hsum(acc);
}

inline float dot_iq4_xs_avx2(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_iq4_xs*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  const __m256i table = iq4_table();
  __m256 accf = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const int ls = iq4xs_scale(ib, a[i].scales_l, a[i].scales_h);
      const __m256i p = iq4_pairs(table, a[i].qs + 16 * ib, b[i].qs + 32 * ib);
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(static_cast<short>(ls))));
    }
    accf = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * b[i].d), _mm256_cvtepi32_ps(acc), accf);
  }
  return hsum(accf);
}

}  // namespace clusterctl::kernels::detail::x86
