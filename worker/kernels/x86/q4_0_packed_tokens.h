#pragma once
// Q4_0x8 prompt kernels for AVX-512 VNNI: two groups of 8 packed rows fill one 512-bit register
// (lane = row), and their nibbles are unpacked once for up to kPackTokens tokens, each of which
// then costs 8 VNNI instructions per block of 16 rows. The one-token kernel (q4_0_packed.h) pays
// the unpacking per token on 8 rows, which made prompts a quarter slower than llama.cpp's.
// Per (row, token) the arithmetic is the one-token kernel's: an exact integer dot, then
// cvt(dot) * (d_row * d_token) added with one fma, block after block.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "worker/kernels/blocks.h"
#include "worker/kernels/kernel_table.h"

namespace clusterctl::kernels::detail::x86 {

// Chunk > 0: each row's float sum restarts every `chunk` columns and is folded into yd (double).
template <int T>
__attribute__((always_inline)) inline void q4_0x16_tokens(int64_t n, int64_t chunk, const uint8_t* g0,
                                                           const uint8_t* g1, const uint8_t* x, size_t x_stride,
                                                           const int32_t* xsum8, size_t xsum_stride, float* yf,
                                                           double* yd, size_t y_stride) {
  const int64_t nb = n / QK4_0, cb = chunk > 0 ? chunk / QK4_0 : nb;
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  __m512d lo_rows[T], hi_rows[T];  // chunked: rows 0..7 and 8..15
  for (int t = 0; t < T; ++t) lo_rows[t] = hi_rows[t] = _mm512_setzero_pd();
  for (int64_t c = 0; c < nb; c += cb) {
    __m512 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t i = c, end = std::min(nb, c + cb); i < end; ++i) {
      const uint8_t* a = g0 + i * kPackedBlockBytes;
      const uint8_t* b = g1 + i * kPackedBlockBytes;
      __m512i lo[4], hi[4];
      for (int j = 0; j < 4; ++j) {
        const __m512i w = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + kPackRows * 2 + 32 * j))),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + kPackRows * 2 + 32 * j)), 1);
        lo[j] = _mm512_and_si512(w, m4);
        hi[j] = _mm512_and_si512(_mm512_srli_epi16(w, 4), m4);
      }
      const __m512 dw = _mm512_cvtph_ps(_mm256_inserti128_si256(
          _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1));
      for (int t = 0; t < T; ++t) {
        const auto& blk = reinterpret_cast<const block_q8_0*>(x + t * x_stride)[i];
        // Broadcast straight from memory (a load, not a move from a general register).
        auto piece = [&](int k) { return _mm512_broadcastd_epi32(_mm_loadu_si32(blk.qs + 4 * k)); };
        __m512i s_lo = _mm512_setzero_si512(), s_hi = _mm512_setzero_si512();
        for (int j = 0; j < 4; ++j) {
          s_lo = _mm512_dpbusd_epi32(s_lo, lo[j], piece(j));
          s_hi = _mm512_dpbusd_epi32(s_hi, hi[j], piece(4 + j));
        }
        const __m512i dot =
            _mm512_sub_epi32(_mm512_add_epi32(s_lo, s_hi), _mm512_set1_epi32(xsum8[t * xsum_stride + i]));
        fp16_t d;
        std::memcpy(&d, &blk.d, sizeof d);
        const __m512 scale = _mm512_mul_ps(dw, _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(d))));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[t]);
      }
    }
    if (chunk > 0) {
      for (int t = 0; t < T; ++t) {
        lo_rows[t] = _mm512_add_pd(lo_rows[t], _mm512_cvtps_pd(_mm512_castps512_ps256(acc[t])));
        hi_rows[t] = _mm512_add_pd(
            hi_rows[t], _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[t]), 1))));
      }
    } else {
      for (int t = 0; t < T; ++t) _mm512_storeu_ps(yf + t * y_stride, acc[t]);
    }
  }
  if (chunk > 0)
    for (int t = 0; t < T; ++t) {
      _mm512_storeu_pd(yd + t * y_stride, lo_rows[t]);
      _mm512_storeu_pd(yd + t * y_stride + 8, hi_rows[t]);
    }
}

template <int T>
void q4_0x16_tokens_for(int64_t n, int64_t chunk, const uint8_t* g0, const uint8_t* g1, const uint8_t* x,
                        size_t x_stride, const int32_t* xsum8, size_t xsum_stride, float* yf, double* yd,
                        size_t y_stride) {
  q4_0x16_tokens<T>(n, chunk, g0, g1, x, x_stride, xsum8, xsum_stride, yf, yd, y_stride);
}

inline void q4_0x16_tokens_any(int64_t n, int64_t chunk, const uint8_t* g0, const uint8_t* g1, const uint8_t* x,
                               size_t x_stride, const int32_t* xsum8, size_t xsum_stride, int n_tokens, float* yf,
                               double* yd, size_t y_stride) {
  switch (n_tokens) {
    case 1: return q4_0x16_tokens_for<1>(n, chunk, g0, g1, x, x_stride, xsum8, xsum_stride, yf, yd, y_stride);
    case 2: return q4_0x16_tokens_for<2>(n, chunk, g0, g1, x, x_stride, xsum8, xsum_stride, yf, yd, y_stride);
    case 3: return q4_0x16_tokens_for<3>(n, chunk, g0, g1, x, x_stride, xsum8, xsum_stride, yf, yd, y_stride);
    default: return q4_0x16_tokens_for<4>(n, chunk, g0, g1, x, x_stride, xsum8, xsum_stride, yf, yd, y_stride);
  }
}

inline void q4_0x8_tokens_dot(int64_t n, const uint8_t* g0, const uint8_t* g1, const uint8_t* x, size_t x_stride,
                              const int32_t* xsum8, size_t xsum_stride, int n_tokens, float* y, size_t y_stride) {
  q4_0x16_tokens_any(n, 0, g0, g1, x, x_stride, xsum8, xsum_stride, n_tokens, y, nullptr, y_stride);
}

inline void q4_0x8_tokens_chunked_dot(int64_t n, int64_t chunk, const uint8_t* g0, const uint8_t* g1,
                                      const uint8_t* x, size_t x_stride, const int32_t* xsum8, size_t xsum_stride,
                                      int n_tokens, double* y, size_t y_stride) {
  q4_0x16_tokens_any(n, chunk, g0, g1, x, x_stride, xsum8, xsum_stride, n_tokens, nullptr, y, y_stride);
}

}  // namespace clusterctl::kernels::detail::x86
