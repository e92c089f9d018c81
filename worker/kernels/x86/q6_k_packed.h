#pragma once
// Layout::Packed8 Q6_K kernels for AVX-512 VNNI (kernels.h has the layout). One chunk of low
// nibbles pair and one chunk of high bits give four 4-byte pieces of every row (pieces c,
// c + 16, c + 32, c + 48): (low nibble | 2 high bits << 4) - 32, signed. Each is dotted with the
// token's piece (stored +128, unsigned) by one dpbusd; a 16-element sub-block's four dots are
// multiplied by the rows' scale, and the row's constant takes the +128 off. Then
// acc += isum * (d * d_token): the scalar reference's steps (packed_matmul.cpp q6_Kx8_dot).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "worker/kernels/blocks.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/x86/packed_vnni.h"
#include "worker/kernels/x86/q6_k_pieces.h"

namespace clusterctl::kernels::detail::x86 {



// ---- one token, 8 rows ----

__attribute__((always_inline)) inline __m256 q6_Kx8_block(const uint8_t* g, const block_q8_K& b, __m256 acc) {
  __m256i isum = _mm256_setzero_si256();
  for (int s = 0; s < 4; ++s) {  // sub-blocks s, s + 4, s + 8, s + 12
    __m256i dot[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int j = 0; j < 4; ++j) {
      const int c = 4 * s + j;
      __m256i w[4];
      q6_K_pieces<__m256i, Ops256>(load256(g + q6_K_low_chunk(c)), load256(g + q6_K_low_chunk(c + 16)),
                                   load256(g + q6_K_high_chunk(c)), w);
      for (int quarter = 0; quarter < 4; ++quarter)
        dot[quarter] = _mm256_dpbusd_epi32(
            dot[quarter], _mm256_broadcastd_epi32(_mm_loadu_si32(b.qs + 4 * (c + 16 * quarter))), w[quarter]);
    }
    for (int quarter = 0; quarter < 4; ++quarter) {
      const __m256i sc = _mm256_cvtepi8_epi32(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(g + kPackedQ6_KScales + 8 * (s + 4 * quarter))));
      isum = _mm256_add_epi32(isum, _mm256_mullo_epi32(dot[quarter], sc));
    }
  }
  isum = _mm256_sub_epi32(isum, load256(g + kPackedQ6_KOffsets));
  const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g))),
                                     _mm256_set1_ps(b.d));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc);
}

inline void q6_Kx8_dot(int64_t n, const uint8_t* group, const void* x, const int32_t*, float* y) {
  const auto* b = static_cast<const block_q8_K*>(x);
  rows8_dot(
      n / QK_K, [&](int64_t i, __m256 acc) { return q6_Kx8_block(group + i * kPackedQ6_KBlockBytes, b[i], acc); }, y);
}

inline void q6_Kx8_chunked_dot(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t*,
                               double* y, float scale) {
  const auto* b = static_cast<const block_q8_K*>(x);
  rows8_chunked_dot(
      n / QK_K, chunk / QK_K,
      [&](int64_t i, __m256 acc) { return q6_Kx8_block(group + i * kPackedQ6_KBlockBytes, b[i], acc); }, y, scale);
}

// ---- up to kPackTokens tokens, 16 rows (two groups in one register) ----

struct Q6_KTokens16 {
  template <int T, bool Chunked>
  static void run(int64_t n, int64_t chunk, const uint8_t* g0, const uint8_t* g1, const uint8_t* x, size_t x_stride,
                  const int32_t*, size_t, float* yf, double* yd, size_t y_stride, const float* scale) {
    const int64_t nb = n / QK_K, cb = Chunked ? chunk / QK_K : nb;
    Rows16Sums<T, Chunked> sums(scale);
    for (int64_t c0 = 0; c0 < nb; c0 += cb) {
      sums.start_chunk();
      for (int64_t i = c0, end = std::min(nb, c0 + cb); i < end; ++i) {
        const uint8_t* a = g0 + i * kPackedQ6_KBlockBytes;
        const uint8_t* b = g1 + i * kPackedQ6_KBlockBytes;
        __m512i isum[T];
        for (int t = 0; t < T; ++t) isum[t] = _mm512_setzero_si512();
        for (int s = 0; s < 4; ++s) {
          __m512i dot[T][4];
          for (int t = 0; t < T; ++t)
            for (auto& d : dot[t]) d = _mm512_setzero_si512();
          for (int j = 0; j < 4; ++j) {
            const int c = 4 * s + j;
            const size_t lo0 = q6_K_low_chunk(c), lo1 = q6_K_low_chunk(c + 16), hi = q6_K_high_chunk(c);
            __m512i w[4];
            q6_K_pieces<__m512i, Ops512>(join_groups(a + lo0, b + lo0), join_groups(a + lo1, b + lo1),
                                         join_groups(a + hi, b + hi), w);
            for (int t = 0; t < T; ++t) {
              const auto& blk = reinterpret_cast<const block_q8_K*>(x + t * x_stride)[i];
              for (int quarter = 0; quarter < 4; ++quarter)
                dot[t][quarter] = _mm512_dpbusd_epi32(
                    dot[t][quarter], _mm512_broadcastd_epi32(_mm_loadu_si32(blk.qs + 4 * (c + 16 * quarter))),
                    w[quarter]);
            }
          }
          for (int quarter = 0; quarter < 4; ++quarter) {
            const size_t at = kPackedQ6_KScales + 8 * (s + 4 * quarter);
            const __m512i sc = _mm512_cvtepi8_epi32(_mm_unpacklo_epi64(
                _mm_loadl_epi64(reinterpret_cast<const __m128i*>(a + at)),
                _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + at))));
            for (int t = 0; t < T; ++t) isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(dot[t][quarter], sc));
          }
        }
        const __m512i offsets = join_groups(a + kPackedQ6_KOffsets, b + kPackedQ6_KOffsets);
        const __m512 d = join_halves_as_ps(a, b);
        for (int t = 0; t < T; ++t) {
          const auto& blk = reinterpret_cast<const block_q8_K*>(x + t * x_stride)[i];
          const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(blk.d));
          sums.acc[t] =
              _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum[t], offsets)), scale, sums.acc[t]);
        }
      }
      sums.end_chunk(yf, y_stride);
    }
    sums.finish(yd, y_stride);
  }
};

}  // namespace clusterctl::kernels::detail::x86
