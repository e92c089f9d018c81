#pragma once
// Layout::Packed8 kernels for AVX-512 VNNI, for Q4_0 and Q8_0 (the type's unpacking is all that
// differs). Prompt tokens: two groups of 8 packed rows fill one 512-bit register (lane = row),
// and their weights are unpacked once for up to kPackTokens tokens, each of which then costs 8
// VNNI instructions per block of 16 rows; one token at a time paid the unpacking per token on 8
// rows, which made Q4_0 prompts a quarter slower than llama.cpp's. One token (decoding): 8 rows
// in a 256-bit register, one sequential stream of memory per group.
// Per (row, token) the arithmetic is the same in both: an exact integer dot, then
// cvt(dot - offset * sum(token quants)) * (d_row * d_token) added with one fma, block after
// block (for Q4_0 also the one-token kernel's of q4_0_packed.h, and the scalar reference's).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "worker/kernels/blocks.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/x86/packed_rows8.h"

namespace clusterctl::kernels::detail::x86 {

// 32 bytes of group a in the low half, the same 32 of group b in the high half (16 row lanes).
inline __m512i join_groups(const uint8_t* a, const uint8_t* b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), 1);
}

// The 8 fp16 of group a, then group b's, as 16 floats.
inline __m512 join_halves_as_ps(const uint8_t* a, const uint8_t* b) {
  return _mm512_cvtph_ps(_mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1));
}

// The T tokens' sums of 16 rows in one block loop: stored plainly, or (Chunked) each row's float
// sum restarted every chunk and folded into a double, the 8 rows of each group in one register.
// Chunked sums are multiplied by scale[t] (when given) before they are folded.
template <int T, bool Chunked>
struct Rows16Sums {
  __m512 acc[T];
  __m512d lo_rows[T], hi_rows[T];
  const float* scale;
  explicit Rows16Sums(const float* s = nullptr) : scale(s) {
    for (int t = 0; t < T; ++t) lo_rows[t] = hi_rows[t] = _mm512_setzero_pd();
  }
  void start_chunk() {
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  }
  void end_chunk(float* yf, size_t y_stride) {
    for (int t = 0; t < T; ++t) {
      if constexpr (Chunked) {
        if (scale) acc[t] = _mm512_mul_ps(acc[t], _mm512_set1_ps(scale[t]));
        lo_rows[t] = _mm512_add_pd(lo_rows[t], _mm512_cvtps_pd(_mm512_castps512_ps256(acc[t])));
        hi_rows[t] = _mm512_add_pd(
            hi_rows[t], _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[t]), 1))));
      } else {
        _mm512_storeu_ps(yf + t * y_stride, acc[t]);
      }
    }
  }
  void finish(double* yd, size_t y_stride) {
    if constexpr (Chunked)
      for (int t = 0; t < T; ++t) {
        _mm512_storeu_pd(yd + t * y_stride, lo_rows[t]);
        _mm512_storeu_pd(yd + t * y_stride + 8, hi_rows[t]);
      }
  }
};

// The weights of a packed block as 8 registers, register k to be dotted with the token's 4-byte
// piece k (elements 4k..4k+3).
struct Q4_0Packed {
  static constexpr size_t kBlockBytes = kPackedQ4_0BlockBytes;
  // 16 rows: group a's 8 in the low half, group b's in the high half.
  static void unpack16(const uint8_t* a, const uint8_t* b, __m512i w[8]) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int j = 0; j < 4; ++j) {
      const __m512i c = join_groups(a + kPackRows * 2 + 32 * j, b + kPackRows * 2 + 32 * j);
      // Low nibbles are elements 4j..4j+3 of each row, high nibbles 16+4j..16+4j+3.
      w[j] = _mm512_and_si512(c, m4);
      w[4 + j] = _mm512_and_si512(_mm512_srli_epi16(c, 4), m4);
    }
  }
};

struct Q8_0Packed {
  static constexpr size_t kBlockBytes = kPackedQ8_0BlockBytes;
  static void unpack16(const uint8_t* a, const uint8_t* b, __m512i w[8]) {
    for (int k = 0; k < 8; ++k) w[k] = join_groups(a + kPackRows * 2 + 32 * k, b + kPackRows * 2 + 32 * k);
  }
  static void unpack8(const uint8_t* a, __m256i w[8]) {
    for (int k = 0; k < 8; ++k) w[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + kPackRows * 2 + 32 * k));
  }
};

// The token's piece k in every 32-bit lane, broadcast straight from memory (a load, not a move
// from a general register).
inline __m512i piece512(const block_q8_0& b, int k) { return _mm512_broadcastd_epi32(_mm_loadu_si32(b.qs + 4 * k)); }
inline __m256i piece256(const block_q8_0& b, int k) { return _mm256_broadcastd_epi32(_mm_loadu_si32(b.qs + 4 * k)); }

inline float token_scale(const block_q8_0& b) {
  fp16_t d;
  std::memcpy(&d, &b.d, sizeof d);
  return _cvtsh_ss(d);
}

// ---- one token, 8 rows ----

template <typename Type>
__attribute__((always_inline)) inline __m256 packed_block8(const uint8_t* g, const block_q8_0& b, int32_t xoff,
                                                            __m256 acc) {
  __m256i w[8];
  Type::unpack8(g, w);
  __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();  // two chains: half the latency
  for (int k = 0; k < 8; k += 2) {
    even = _mm256_dpbusd_epi32(even, w[k], piece256(b, k));
    odd = _mm256_dpbusd_epi32(odd, w[k + 1], piece256(b, k + 1));
  }
  const __m256i dot = _mm256_sub_epi32(_mm256_add_epi32(even, odd), _mm256_set1_epi32(xoff));
  const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g))),
                                     _mm256_set1_ps(token_scale(b)));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc);
}

template <typename Type>
void packed_dot(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  const auto* b = static_cast<const block_q8_0*>(x);
  rows8_dot(
      n / QK8_0,
      [&](int64_t i, __m256 acc) { return packed_block8<Type>(group + i * Type::kBlockBytes, b[i], xoff[i], acc); }, y);
}

template <typename Type>
void packed_chunked_dot(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                        double* y, float scale) {
  const auto* b = static_cast<const block_q8_0*>(x);
  rows8_chunked_dot(
      n / QK8_0, chunk / QK8_0,
      [&](int64_t i, __m256 acc) { return packed_block8<Type>(group + i * Type::kBlockBytes, b[i], xoff[i], acc); }, y, scale);
}

// ---- up to kPackTokens tokens, 16 rows ----

// Chunked: each row's float sum restarts every `chunk` columns and is folded into yd (double).
template <typename Type>
struct PackedTokens16 {
  template <int T, bool Chunked>
  static void run(int64_t n, int64_t chunk, const uint8_t* g0, const uint8_t* g1, const uint8_t* x, size_t x_stride,
                  const int32_t* xoff, size_t xoff_stride, float* yf, double* yd, size_t y_stride, const float* scale) {
    const int64_t nb = n / QK8_0, cb = Chunked ? chunk / QK8_0 : nb;
    Rows16Sums<T, Chunked> sums(scale);
    for (int64_t c = 0; c < nb; c += cb) {
      sums.start_chunk();
      for (int64_t i = c, end = std::min(nb, c + cb); i < end; ++i) {
        const uint8_t* a = g0 + i * Type::kBlockBytes;
        const uint8_t* b = g1 + i * Type::kBlockBytes;
        __m512i w[8];
        Type::unpack16(a, b, w);
        const __m512 dw = join_halves_as_ps(a, b);
        for (int t = 0; t < T; ++t) {
          const auto& blk = reinterpret_cast<const block_q8_0*>(x + t * x_stride)[i];
          __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
          for (int k = 0; k < 8; k += 2) {
            even = _mm512_dpbusd_epi32(even, w[k], piece512(blk, k));
            odd = _mm512_dpbusd_epi32(odd, w[k + 1], piece512(blk, k + 1));
          }
          const __m512i dot =
              _mm512_sub_epi32(_mm512_add_epi32(even, odd), _mm512_set1_epi32(xoff[t * xoff_stride + i]));
          const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(token_scale(blk)));
          sums.acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, sums.acc[t]);
        }
      }
      sums.end_chunk(yf, y_stride);
    }
    sums.finish(yd, y_stride);
  }
};

}  // namespace clusterctl::kernels::detail::x86
