#pragma once
// AVX2 decode dots of the 1-3-bit IQ formats against Q8_K, shared by the AVX2 and AVX-512 VNNI
// sources (Madd: madd + add, or VNNI's fused dpwssd). Per 32 elements: the grid entries of the
// 4 (IQ2, IQ1) or 8 (IQ3) groups gathered into one vector of unsigned magnitudes, their signs
// moved onto the activations (sign_epi8), one maddubs into int16 pairs and one Madd with the
// sub-block scales. The integer sums are exactly the scalar reference's (rows_iq.cpp); only the
// order of the float sums differs (the blocks' floats stay in 8 lanes to the row's end).
#include <immintrin.h>

#include <cstring>

#include "worker/kernels/blocks.h"
#include "worker/kernels/iq_grids.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/quant_ref.h"
#include "worker/kernels/rows_iq_blocks.h"
#include "worker/kernels/x86/avx2_helpers.h"
#include "worker/kernels/x86/rows_kquant.h"

namespace clusterctl::kernels::detail::x86 {

// Four 8-byte grid entries, group 0 lowest.
inline __m256i grid4(const uint64_t* g, int i0, int i1, int i2, int i3) {
  return _mm256_set_epi64x(static_cast<long long>(g[i3]), static_cast<long long>(g[i2]), static_cast<long long>(g[i1]),
                           static_cast<long long>(g[i0]));
}

// Eight 4-byte IQ3 grid entries.
inline __m256i grid8(const uint32_t* g, const int (&i)[8]) {
  return _mm256_setr_epi32(static_cast<int>(g[i[0]]), static_cast<int>(g[i[1]]), static_cast<int>(g[i[2]]),
                           static_cast<int>(g[i[3]]), static_cast<int>(g[i[4]]), static_cast<int>(g[i[5]]),
                           static_cast<int>(g[i[6]]), static_cast<int>(g[i[7]]));
}

// +-1 bytes of four 7-bit sign sets (the eighth sign is their parity).
inline __m256i signs7x4(unsigned s0, unsigned s1, unsigned s2, unsigned s3) {
  return grid4(kIqSignBytes.data(), static_cast<int>(s0), static_cast<int>(s1), static_cast<int>(s2),
               static_cast<int>(s3));
}

// +-1 bytes of 32 explicit sign bits (IQ2_S, IQ3_S).
inline __m256i signs32(const uint8_t* bits4) { return _mm256_or_si256(spread_bits(bits4), _mm256_set1_epi8(1)); }

inline __m256i load32(const int8_t* q8) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8)); }

// Int16 pair sums of 32 magnitudes times 32 activations with signs applied.
inline __m256i signed_pairs(__m256i grid, __m256i signs, const int8_t* q8) {
  return _mm256_maddubs_epi16(grid, _mm256_sign_epi8(load32(q8), signs));
}

// 2s + 1 for 16 int16 lanes of raw 3- or 4-bit scales s.
inline __m256i odd_scales(__m256i s) { return _mm256_add_epi16(_mm256_slli_epi16(s, 1), _mm256_set1_epi16(1)); }

// IQ2_XS / IQ2_S: 8 bytes of two 4-bit scales (first 16 elements low nibble) as 16 int16 lanes,
// sub-block ib's first-half scale in lane ib of the low 128 bits and its second-half scale in
// lane ib of the high 128 bits, for broadcast_scale(v, ib).
inline __m256i nibble_scales16(const uint8_t* scales8) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales8));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  return odd_scales(_mm256_setr_m128i(_mm_cvtepu8_epi16(_mm_and_si128(b, m4)),
                                      _mm_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(b, 4), m4))));
}

// factor * the sum over blocks of d * d8 * block(a, b) (8 float lanes of the block's integer
// sums with the type's constants), the lanes kept to the row's end and then added.
template <typename Block, typename BlockSums>
inline float iq_dot_avx2(int64_t n, const void* w, const void* x, float factor, BlockSums&& block) {
  const auto* a = static_cast<const Block*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i)
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(iq_block_d(a[i])) * b[i].d), block(a[i], b[i]), acc);
  return factor * hsum(acc);
}

template <MaddAcc Madd>
float dot_iq2_xxs_avx2(int64_t n, const void* w, const void* x) {
  return iq_dot_avx2<block_iq2_xxs>(n, w, x, 0.125f, [](const block_iq2_xxs& a, const block_q8_K& b) {
    const int8_t* q8 = b.qs;
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int ib = 0; ib < QK_K / 32; ++ib, q8 += 32) {
      uint32_t aux[2];
      std::memcpy(aux, a.qs + 4 * ib, sizeof aux);
      const __m256i g =
          grid4(kIq2xxsGrid.data(), aux[0] & 255, (aux[0] >> 8) & 255, (aux[0] >> 16) & 255, aux[0] >> 24);
      const __m256i s = signs7x4(aux[1] & 127, (aux[1] >> 7) & 127, (aux[1] >> 14) & 127, (aux[1] >> 21) & 127);
      sumi = Madd(sumi, _mm256_set1_epi16(static_cast<short>(2 * (aux[1] >> 28) + 1)), signed_pairs(g, s, q8));
    }
    return _mm256_cvtepi32_ps(sumi);
  });
}

template <MaddAcc Madd>
float dot_iq2_xs_avx2(int64_t n, const void* w, const void* x) {
  return iq_dot_avx2<block_iq2_xs>(n, w, x, 0.125f, [](const block_iq2_xs& a, const block_q8_K& b) {
    const int8_t* q8 = b.qs;
    const uint16_t* q2 = a.qs;
    const __m256i scales = nibble_scales16(a.scales);
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int ib = 0; ib < QK_K / 32; ++ib, q8 += 32, q2 += 4) {
      const __m256i g = grid4(kIq2xsGrid.data(), q2[0] & 511, q2[1] & 511, q2[2] & 511, q2[3] & 511);
      const __m256i s = signs7x4(q2[0] >> 9, q2[1] >> 9, q2[2] >> 9, q2[3] >> 9);
      sumi = Madd(sumi, broadcast_scale(scales, ib), signed_pairs(g, s, q8));
    }
    return _mm256_cvtepi32_ps(sumi);
  });
}

template <MaddAcc Madd>
float dot_iq2_s_avx2(int64_t n, const void* w, const void* x) {
  return iq_dot_avx2<block_iq2_s>(n, w, x, 0.125f, [](const block_iq2_s& a, const block_q8_K& b) {
    const int8_t* q8 = b.qs;
    const uint8_t* qs = a.qs;
    const uint8_t* qh = a.qh;
    const __m256i scales = nibble_scales16(a.scales);
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int ib = 0; ib < QK_K / 32; ++ib, q8 += 32) {
      const __m256i g = grid4(kIq2sGrid.data(), iq2s_index(qs, qh, ib, 0), iq2s_index(qs, qh, ib, 1),
                              iq2s_index(qs, qh, ib, 2), iq2s_index(qs, qh, ib, 3));
      const __m256i s = signs32(qs + QK_K / 8 + 4 * ib);
      sumi = Madd(sumi, broadcast_scale(scales, ib), signed_pairs(g, s, q8));
    }
    return _mm256_cvtepi32_ps(sumi);
  });
}

template <MaddAcc Madd>
float dot_iq3_xxs_avx2(int64_t n, const void* w, const void* x) {
  return iq_dot_avx2<block_iq3_xxs>(n, w, x, 0.25f, [](const block_iq3_xxs& a, const block_q8_K& b) {
    const int8_t* q8 = b.qs;
    const uint8_t* q3 = a.qs;
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int ib = 0; ib < QK_K / 32; ++ib, q8 += 32, q3 += 8) {
      uint32_t aux;
      std::memcpy(&aux, a.qs + QK_K / 4 + 4 * ib, sizeof aux);
      const int idx[8] = {q3[0], q3[1], q3[2], q3[3], q3[4], q3[5], q3[6], q3[7]};
      const __m256i s = signs7x4(aux & 127, (aux >> 7) & 127, (aux >> 14) & 127, (aux >> 21) & 127);
      sumi = Madd(sumi, _mm256_set1_epi16(static_cast<short>(2 * (aux >> 28) + 1)),
                  signed_pairs(grid8(kIq3xxsGrid.data(), idx), s, q8));
    }
    return _mm256_cvtepi32_ps(sumi);
  });
}

template <MaddAcc Madd>
float dot_iq3_s_avx2(int64_t n, const void* w, const void* x) {
  return iq_dot_avx2<block_iq3_s>(n, w, x, 1.0f, [](const block_iq3_s& a, const block_q8_K& b) {
    const int8_t* q8 = b.qs;
    const uint8_t* qs = a.qs;
    const uint8_t* qh = a.qh;
    // Sub-block ib's scale is nibble ib % 2 of byte ib / 2: interleave the nibbles into lanes 0..7.
    uint32_t sc4;
    std::memcpy(&sc4, a.scales, 4);
    const __m128i sb = _mm_cvtsi32_si128(static_cast<int>(sc4));
    const __m128i m4 = _mm_set1_epi8(0x0f);
    const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(sb, m4), _mm_and_si128(_mm_srli_epi16(sb, 4), m4));
    const __m256i scales = odd_scales(_mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(nib)));
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int ib = 0; ib < QK_K / 32; ++ib, q8 += 32) {
      int idx[8];
      for (int k = 0; k < 8; ++k) idx[k] = iq3s_index(qs, qh, ib, k);
      sumi = Madd(sumi, broadcast_scale(scales, ib),
                  signed_pairs(grid8(kIq3sGrid.data(), idx), signs32(a.signs + 4 * ib), q8));
    }
    return _mm256_cvtepi32_ps(sumi);
  });
}

// IQ1: the grid bytes are -1, 0 or +1, so grid . q8 is sign_epi8(q8, grid) summed (maddubs with
// ones gives the int16 pairs).
inline __m256i iq1_pairs(__m256i grid, const int8_t* q8) {
  return _mm256_maddubs_epi16(_mm256_set1_epi8(1), _mm256_sign_epi8(load32(q8), grid));
}

// IQ1_S: the delta term from the activation block sums (8 lanes of ls * delta * the sum of
// each sub-block's two bsums), as the scalar reference.
template <MaddAcc Madd>
float dot_iq1_s_avx2(int64_t n, const void* w, const void* x) {
  return iq_dot_avx2<block_iq1_s>(n, w, x, 1.0f, [](const block_iq1_s& a, const block_q8_K& b) {
    const int8_t* q8 = b.qs;
    const uint8_t* qs = a.qs;
    const __m128i qh8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.qh));
    const __m128i ls8 =
        _mm_add_epi16(_mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(qh8, 12), _mm_set1_epi16(7)), 1), _mm_set1_epi16(1));
    const __m256i scales = _mm256_broadcastsi128_si256(ls8);
    // ls with the delta's sign (bit 15 of qh: the int16 is negative), once per bsum of 16.
    const __m128i lsd = _mm_sign_epi16(ls8, _mm_or_si128(qh8, _mm_set1_epi16(1)));
    const __m256i lsd16 = _mm256_setr_m128i(_mm_unpacklo_epi16(lsd, lsd), _mm_unpackhi_epi16(lsd, lsd));
    const __m256i sumd = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.bsums)), lsd16);
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int ib2 = 0; ib2 < QK_K / 64; ++ib2) {
      // iq1s_index of the 8 groups of sub-blocks 2 ib2, 2 ib2 + 1: 3 bits each of their qh words.
      uint32_t qh2;
      std::memcpy(&qh2, a.qh + 2 * ib2, 4);
      const uint8_t* q = qs + 8 * ib2;
      // Group j's index: its qs byte | 3 bits of qh2 (at 3 j, then 16 + 3 (j - 4)) << 8, in
      // general registers (constant shifts once unrolled; a vector stored and reloaded was slower).
      const auto index = [&](int j) {
        const int at = j < 4 ? 3 * j : 16 + 3 * (j - 4);
        return static_cast<int>(q[j] | ((at < 8 ? (qh2 << (8 - at)) : (qh2 >> (at - 8))) & 0x700));
      };
#pragma GCC unroll 2
      for (int k = 0; k < 2; ++k, q8 += 32) {
        const __m256i g = grid4(kIq1sGrid.data(), index(4 * k), index(4 * k + 1), index(4 * k + 2), index(4 * k + 3));
        sumi = Madd(sumi, broadcast_scale(scales, 2 * ib2 + k), iq1_pairs(g, q8));
      }
    }
    return _mm256_fmadd_ps(_mm256_set1_ps(kIq1Delta), _mm256_cvtepi32_ps(sumd), _mm256_cvtepi32_ps(sumi));
  });
}

// IQ1_M: scales per 16 elements, a delta sign per 8. The delta bit sits above each group's 3
// high index bits in qh, so the 12-bit index picks 8 * grid + delta from kIq1mDeltaGrid and one
// byte dot gives 8 * (grid . q8) + (delta . q8) (at most 2 * 9 * 127 per int16 pair): the
// reference's sumi1 + sumi2 / 8, times 8 exactly, in one integer.
template <MaddAcc Madd>
float dot_iq1_m_avx2(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_iq1_m*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const int8_t* q8 = b[i].qs;
    const uint8_t* qs = a[i].qs;
    const uint8_t* qh = a[i].qh;
    // iq1m_subscale of all 16 halves: half h = 4 w + j is bits 3 j of scale word w. Shifting the
    // four words by 0, 6 (low 128 bits: even h) and 3, 9 (high: odd h) puts the scales of
    // sub-block ib's two halves in lane 4 (ib % 2) + ib / 2 of each 128-bit half.
    uint64_t sc64;
    std::memcpy(&sc64, a[i].scales, 8);
    const __m256i scales = odd_scales(_mm256_and_si256(
        _mm256_srlv_epi64(_mm256_set1_epi64x(static_cast<long long>(sc64)), _mm256_setr_epi64x(0, 6, 3, 9)),
        _mm256_set1_epi16(7)));
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int ib2 = 0; ib2 < QK_K / 64; ++ib2) {
      // The 12-bit indices of the 8 groups of sub-blocks 2 ib2, 2 ib2 + 1: nibble l of their 4 qh bytes.
      uint32_t qh4;
      std::memcpy(&qh4, qh + 4 * ib2, 4);
      const uint8_t* q = qs + 8 * ib2;
      // Group j's index: its qs byte | nibble j of qh4 << 8 (the shifts are constants once unrolled).
      const auto index = [&](int j) {
        return static_cast<int>(q[j] | ((j < 2 ? (qh4 << (8 - 4 * j)) : (qh4 >> (4 * j - 8))) & 0xf00));
      };
#pragma GCC unroll 2
      for (int k = 0; k < 2; ++k, q8 += 32) {
        const int ib = 2 * ib2 + k;
        const __m256i g =
            grid4(kIq1mDeltaGrid.data(), index(4 * k), index(4 * k + 1), index(4 * k + 2), index(4 * k + 3));
        sumi = Madd(sumi, broadcast_scale(scales, 4 * (ib % 2) + ib / 2),
                    _mm256_maddubs_epi16(_mm256_sign_epi8(g, g), _mm256_sign_epi8(load32(q8), g)));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(iq1m_scale_bits(a[i].scales)) * b[i].d * kIq1Delta),
                          _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc);
}

template <MaddAcc Madd>
void install_iq_dots(KernelTable& t) {
  t.vec_dot[slot(GgmlType::IQ2_XXS)] = dot_iq2_xxs_avx2<Madd>;
  t.vec_dot[slot(GgmlType::IQ2_XS)] = dot_iq2_xs_avx2<Madd>;
  t.vec_dot[slot(GgmlType::IQ2_S)] = dot_iq2_s_avx2<Madd>;
  t.vec_dot[slot(GgmlType::IQ3_XXS)] = dot_iq3_xxs_avx2<Madd>;
  t.vec_dot[slot(GgmlType::IQ3_S)] = dot_iq3_s_avx2<Madd>;
  t.vec_dot[slot(GgmlType::IQ1_S)] = dot_iq1_s_avx2<Madd>;
  t.vec_dot[slot(GgmlType::IQ1_M)] = dot_iq1_m_avx2<Madd>;
}

}  // namespace clusterctl::kernels::detail::x86
