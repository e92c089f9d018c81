#pragma once
// Layout::Packed8 Q4_K kernels for AVX-512 VNNI (kernels.h has the layout). Per super-block and
// row lane: for each sub-block pair, the low and high nibbles' dots with the token (8 dpbusd
// each, exact) times the rows' 6-bit scales (one 32-bit multiply each); the mins as int16 pairs
// against the token's sub-block sums (one madd); then t = d * isum - dmin * msum (one multiply,
// one fused negative multiply-add) and acc += t * d_token (one fma): the scalar reference's
// steps (packed_matmul.cpp k4_x8_dot_scalar), so the same bits on every path. Q5_K (Fifth) is
// the same with each nibble's fifth bit ORed on from its high-bit chunk.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "worker/kernels/blocks.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/x86/k4_chunks.h"
#include "worker/kernels/x86/packed_vnni.h"

namespace clusterctl::kernels::detail::x86 {

inline __m256i bytes8_as_epi32(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// ---- one token, 8 rows ----

template <bool Fifth>
__attribute__((always_inline)) inline __m256 q4_Kx8_block(const uint8_t* g, const block_q8_K& b, const int32_t* pairs,
                                                           __m256 acc) {
  __m256i isum = _mm256_setzero_si256(), msum = _mm256_setzero_si256();
  const auto load = [g](size_t at) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + at)); };
  for (int p = 0; p < 4; ++p) {
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256(), bits = lo;
    for (int j = 0; j < 8; ++j) {
      __m256i wl, wh;
      k4_chunk<Fifth, __m256i, Ops256>(load, p, j, bits, wl, wh);
      lo = _mm256_dpbusd_epi32(lo, wl, _mm256_broadcastd_epi32(_mm_loadu_si32(b.qs + 64 * p + 4 * j)));
      hi = _mm256_dpbusd_epi32(hi, wh, _mm256_broadcastd_epi32(_mm_loadu_si32(b.qs + 64 * p + 32 + 4 * j)));
    }
    const uint8_t* sc = g + kPackedQ4_KScales + 16 * p;
    isum = _mm256_add_epi32(isum, _mm256_add_epi32(_mm256_mullo_epi32(lo, bytes8_as_epi32(sc)),
                                                   _mm256_mullo_epi32(hi, bytes8_as_epi32(sc + 8))));
    const __m256i mins = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + kPackedQ4_KMins + 32 * p));
    msum = _mm256_add_epi32(msum, _mm256_madd_epi16(mins, _mm256_set1_epi32(pairs[p])));
  }
  const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
  const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 16)));
  const __m256 t = _mm256_fnmadd_ps(dmin, _mm256_cvtepi32_ps(msum), _mm256_mul_ps(d, _mm256_cvtepi32_ps(isum)));
  return _mm256_fmadd_ps(t, _mm256_set1_ps(b.d), acc);
}


template <bool Fifth>
void k4_x8_dot(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  const auto* b = static_cast<const block_q8_K*>(x);
  rows8_dot(
      n / QK_K,
      [&](int64_t i, __m256 acc) {
        return q4_Kx8_block<Fifth>(group + i * k4_block_bytes<Fifth>, b[i], xoff + i * kPackedQ4_KXoff, acc);
      },
      y);
}

template <bool Fifth>
void k4_x8_chunked_dot(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                       double* y, float scale) {
  const auto* b = static_cast<const block_q8_K*>(x);
  rows8_chunked_dot(
      n / QK_K, chunk / QK_K,
      [&](int64_t i, __m256 acc) {
        return q4_Kx8_block<Fifth>(group + i * k4_block_bytes<Fifth>, b[i], xoff + i * kPackedQ4_KXoff, acc);
      },
      y, scale);
}

// ---- up to kPackTokens tokens, 16 rows (two groups in one register) ----

inline __m512i join_scales(const uint8_t* a, const uint8_t* b) {
  return _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a)),
                                                 _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b))));
}

template <bool Fifth>
struct K4Tokens16 {
  // Chunked: each row's float sum restarts every `chunk` columns and is folded into yd (double).
  template <int T, bool Chunked>
  static void run(int64_t n, int64_t chunk, const uint8_t* g0, const uint8_t* g1, const uint8_t* x, size_t x_stride,
                  const int32_t* xoff, size_t xoff_stride, float* yf, double* yd, size_t y_stride, const float* scale) {
    const int64_t nb = n / QK_K, cb = Chunked ? chunk / QK_K : nb;
    Rows16Sums<T, Chunked> sums(scale);
    for (int64_t c = 0; c < nb; c += cb) {
      sums.start_chunk();
      for (int64_t i = c, end = std::min(nb, c + cb); i < end; ++i) {
        const uint8_t* a = g0 + i * k4_block_bytes<Fifth>;
        const uint8_t* b = g1 + i * k4_block_bytes<Fifth>;
        const auto load = [a, b](size_t at) { return join_groups(a + at, b + at); };
        __m512i isum[T], msum[T];
        for (int t = 0; t < T; ++t) isum[t] = msum[t] = _mm512_setzero_si512();
        for (int p = 0; p < 4; ++p) {
          __m512i lo[8], hi[8], bits = _mm512_setzero_si512();
          for (int j = 0; j < 8; ++j) k4_chunk<Fifth, __m512i, Ops512>(load, p, j, bits, lo[j], hi[j]);
          const size_t sc = kPackedQ4_KScales + 16 * p;
          const __m512i sc_lo = join_scales(a + sc, b + sc), sc_hi = join_scales(a + sc + 8, b + sc + 8);
          const __m512i mins = join_groups(a + kPackedQ4_KMins + 32 * p, b + kPackedQ4_KMins + 32 * p);
          for (int t = 0; t < T; ++t) {
            const auto& blk = reinterpret_cast<const block_q8_K*>(x + t * x_stride)[i];
            __m512i dlo = _mm512_setzero_si512(), dhi = _mm512_setzero_si512();
            for (int j = 0; j < 8; ++j) {
              dlo = _mm512_dpbusd_epi32(dlo, lo[j], _mm512_broadcastd_epi32(_mm_loadu_si32(blk.qs + 64 * p + 4 * j)));
              dhi = _mm512_dpbusd_epi32(dhi, hi[j],
                                        _mm512_broadcastd_epi32(_mm_loadu_si32(blk.qs + 64 * p + 32 + 4 * j)));
            }
            isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(dlo, sc_lo),
                                                                 _mm512_mullo_epi32(dhi, sc_hi)));
            const int32_t pair = xoff[t * xoff_stride + i * kPackedQ4_KXoff + p];
            msum[t] = _mm512_add_epi32(msum[t], _mm512_madd_epi16(mins, _mm512_set1_epi32(pair)));
          }
        }
        const __m512 d = join_halves_as_ps(a, b), dmin = join_halves_as_ps(a + 16, b + 16);
        for (int t = 0; t < T; ++t) {
          const auto& blk = reinterpret_cast<const block_q8_K*>(x + t * x_stride)[i];
          const __m512 v =
              _mm512_fnmadd_ps(dmin, _mm512_cvtepi32_ps(msum[t]), _mm512_mul_ps(d, _mm512_cvtepi32_ps(isum[t])));
          sums.acc[t] = _mm512_fmadd_ps(v, _mm512_set1_ps(blk.d), sums.acc[t]);
        }
      }
      sums.end_chunk(yf, y_stride);
    }
    sums.finish(yd, y_stride);
  }
};

}  // namespace clusterctl::kernels::detail::x86
