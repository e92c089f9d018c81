#pragma once
// Q4_0 Layout::Packed8 kernels (packed.h), shared by the AVX2 and AVX-512 VNNI sources, which differ
// only in the unsigned x signed byte dot they accumulate with. A block of 8 rows is 4 loads of
// 32 bytes (lane = row), 8 dot instructions against broadcast 4-byte pieces of the token, and
// no horizontal sums; the rows' scales are one 16-byte load. One group of rows is one
// sequential run of memory, which one core's prefetchers stream at close to the DRAM rate
// (the 8 separate rows of the Rows layout reached half of it).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "worker/kernels/blocks.h"
#include "worker/kernels/packed.h"
#include "worker/kernels/x86/packed_rows8.h"

namespace clusterctl::kernels::detail::x86 {

// acc (lane = row) += the 8 rows' dot with block i of the token, times their scales. Per row
// this is cvt(integer dot) * (d_row * d_token) added with one fma, block after block: the order
// of the Rows layout's 8-row kernel and of the scalar reference.
template <__m256i (*DotAcc)(__m256i, __m256i, __m256i)>
__attribute__((always_inline)) inline __m256 q4_0x8_block(const uint8_t* g, const block_q8_0& b, int32_t xoff,
                                                          __m256 acc) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  int32_t yq[8];
  std::memcpy(yq, b.qs, sizeof yq);
  const uint8_t* qs = g + kPackRows * 2;
  __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
  for (int j = 0; j < 4; ++j) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * j));
    // Low nibbles are elements 4j..4j+3 of each row, high nibbles 16+4j..16+4j+3.
    lo = DotAcc(lo, _mm256_and_si256(c, m4), _mm256_set1_epi32(yq[j]));
    hi = DotAcc(hi, _mm256_and_si256(_mm256_srli_epi16(c, 4), m4), _mm256_set1_epi32(yq[4 + j]));
  }
  const __m256i dot = _mm256_sub_epi32(_mm256_add_epi32(lo, hi), _mm256_set1_epi32(xoff));
  const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g))),
                                     _mm256_set1_ps(_cvtsh_ss(b.d)));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc);
}

template <__m256i (*DotAcc)(__m256i, __m256i, __m256i)>
void q4_0x8_dot(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  const auto* b = static_cast<const block_q8_0*>(x);
  rows8_dot<kPackedQ4_0BlockBytes>(
      group, n / QK4_0,
      [&](int64_t i, __m256 acc) {
        return q4_0x8_block<DotAcc>(group + i * kPackedQ4_0BlockBytes, b[i], xoff[i], acc);
      },
      y);
}

template <__m256i (*DotAcc)(__m256i, __m256i, __m256i)>
void q4_0x8_chunked_dot(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff, double* y,
                        float scale) {
  const auto* b = static_cast<const block_q8_0*>(x);
  rows8_chunked_dot<kPackedQ4_0BlockBytes>(
      group, n / QK4_0, chunk / QK4_0,
      [&](int64_t i, __m256 acc) {
        return q4_0x8_block<DotAcc>(group + i * kPackedQ4_0BlockBytes, b[i], xoff[i], acc);
      },
      y, scale);
}

// ---- AVX2: prompt tokens, up to kPackTokens at a time against one group after the other ----
//
// The group's nibbles are unpacked once for all tokens. Per token and block the 8 byte products
// land in 16-bit lanes (each at most 2 * 15 * 127, eight of them at most 30480: no saturation)
// and one multiply-add widens them: an exact integer dot, as in q4_0x8_block, so the same bits.

// One group (GroupByGroup runs both: 16 ymm registers hold one group's nibbles and 4 tokens' sums).
struct Q4_0TokensAvx2 {
  template <int T, bool Chunked>
  static void run(int64_t n, int64_t chunk, const uint8_t* group, const uint8_t* x, size_t x_stride,
                  const int32_t* xoff, size_t xoff_stride, float* yf, double* yd, size_t y_stride, const float* scale) {
    const int64_t nb = n / QK4_0, cb = Chunked ? chunk / QK4_0 : nb;
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    Rows8Sums<T, Chunked> sums(scale);
    for (int64_t c = 0; c < nb; c += cb) {
      sums.start_chunk();
      for (int64_t i = c, end = std::min(nb, c + cb); i < end; ++i) {
        const uint8_t* g = group + i * kPackedQ4_0BlockBytes;
        Rows8Sums<T, Chunked>::template prefetch<kPackedQ4_0BlockBytes>(g);
        __m256i lo[4], hi[4];
        for (int j = 0; j < 4; ++j) {
          const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + kPackRows * 2 + 32 * j));
          lo[j] = _mm256_and_si256(q, m4);
          hi[j] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
        for (int t = 0; t < T; ++t) {
          const auto& b = reinterpret_cast<const block_q8_0*>(x + t * x_stride)[i];
          __m256i s16 = _mm256_setzero_si256();
          for (int j = 0; j < 4; ++j) {
            const __m256i y_lo = _mm256_broadcastd_epi32(_mm_loadu_si32(b.qs + 4 * j));
            const __m256i y_hi = _mm256_broadcastd_epi32(_mm_loadu_si32(b.qs + 16 + 4 * j));
            s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(lo[j], y_lo));
            s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(hi[j], y_hi));
          }
          const __m256i dot =
              _mm256_sub_epi32(_mm256_madd_epi16(s16, ones), _mm256_set1_epi32(xoff[t * xoff_stride + i]));
          const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(b.d)));
          sums.acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, sums.acc[t]);
        }
      }
      sums.end_chunk(yf, y_stride);
    }
    sums.finish(yd, y_stride);
  }
};

}  // namespace clusterctl::kernels::detail::x86
