// Layout::Packed8 kernels for AVX-512 VNNI (packed.h has the layouts). Q4_0 and Q8_0 first (the
// type's unpacking is all that differs between them). Prompt tokens: two groups of 8 packed rows fill one 512-bit
// register (lane = row), and their weights are unpacked once for up to kPackTokens tokens, each of which then costs 8
// VNNI instructions per block of 16 rows; one token at a time paid the unpacking per token on 8
// rows, which made Q4_0 prompts a quarter slower than llama.cpp's. One token (decoding): 8 rows
// in a 256-bit register, one sequential stream of memory per group.
// Per (row, token) the arithmetic is the same in both: an exact integer dot, then
// cvt(dot - offset * sum(token quants)) * (d_row * d_token) added with one fma, block after
// block (for Q4_0 also the one-token kernel's of packed_q4_0.h, and the scalar reference's).
// gcc 12's AVX-512 insert intrinsics pass _mm512_undefined_*() as their unused merge source and
// then warn that it may be uninitialised (a false positive, fixed in gcc 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "worker/kernels/blocks.h"
#include "worker/kernels/packed.h"
#include "worker/kernels/packed_tokens.h"
#include "worker/kernels/x86/packed_iq4_xs.h"
#include "worker/kernels/x86/packed_k4.h"
#include "worker/kernels/x86/packed_q2_k.h"
#include "worker/kernels/x86/packed_q3_k.h"
#include "worker/kernels/x86/packed_q4_0.h"
#include "worker/kernels/x86/packed_q6_k.h"
#include "worker/kernels/x86/packed_rows8.h"

namespace clusterctl::kernels::detail::x86 {

// 32 bytes of group a in the low half, the same 32 of group b in the high half (16 row lanes).
inline __m512i join_groups(const uint8_t* a, const uint8_t* b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), 1);
}

// The 8 fp16 of group a, then group b's, as 16 floats.
inline __m512 join_halves_as_ps(const uint8_t* a, const uint8_t* b) {
  return _mm512_cvtph_ps(
      _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
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

// A type's VNNI kernels: one token against 8 rows (Rows8Kernels: Type::decode, Act, kCols,
// kBlockBytes, kXoff) and up to kPackTokens tokens against 16 rows, two groups in one register:
//   template <int T> static void block16(const uint8_t* a, const uint8_t* b, const Act* const* x,
//       const int32_t* const* xoff, __m512* acc): acc[t] plus the block of groups a (low half)
//     and b (high half) against token t's block x[t].
template <typename Type>
struct Rows16Kernels {
  using Act = typename Type::Act;

  // Chunked: each row's float sum restarts every `chunk` columns and is folded into yd (double).
  template <int T, bool Chunked>
  static void run(int64_t n, int64_t chunk, const uint8_t* g0, const uint8_t* g1, const uint8_t* x, size_t x_stride,
                  const int32_t* xoff, size_t xoff_stride, float* yf, double* yd, size_t y_stride, const float* scale) {
    const int64_t nb = n / Type::kCols, cb = Chunked ? chunk / Type::kCols : nb;
    Rows16Sums<T, Chunked> sums(scale);
    for (int64_t c = 0; c < nb; c += cb) {
      sums.start_chunk();
      for (int64_t i = c, end = std::min(nb, c + cb); i < end; ++i) {
        const Act* blk[T];
        const int32_t* off[T];
        for (int t = 0; t < T; ++t) {
          blk[t] = reinterpret_cast<const Act*>(x + t * x_stride) + i;
          off[t] = xoff + t * xoff_stride + i * Type::kXoff;
        }
        Type::template block16<T>(g0 + i * Type::kBlockBytes, g1 + i * Type::kBlockBytes, blk, off, sums.acc);
      }
      sums.end_chunk(yf, y_stride);
    }
    sums.finish(yd, y_stride);
  }

  // The kernel table's entry.
  static PackedKernels kernels() {
    return {Rows8Kernels<Type>::dot, Rows8Kernels<Type>::chunked_dot, packed_tokens_dot<Rows16Kernels>,
            packed_tokens_chunked_dot<Rows16Kernels>};
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

// IQ4_NL: Q4_0's nibbles through the table, +128 (unsigned for dpbusd; xoff takes it off).
struct Iq4NlPacked {
  static constexpr size_t kBlockBytes = kPackedQ4_0BlockBytes;
  static __m128i table() {
    return _mm_add_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kValuesIq4nl)), _mm_set1_epi8(char(0x80)));
  }
  static void unpack16(const uint8_t* a, const uint8_t* b, __m512i w[8]) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), t = _mm512_broadcast_i32x4(table());
    for (int j = 0; j < 4; ++j) {
      const __m512i c = join_groups(a + kPackRows * 2 + 32 * j, b + kPackRows * 2 + 32 * j);
      w[j] = _mm512_shuffle_epi8(t, _mm512_and_si512(c, m4));
      w[4 + j] = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(c, 4), m4));
    }
  }
  static void unpack8(const uint8_t* a, __m256i w[8]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), t = _mm256_broadcastsi128_si256(table());
    for (int j = 0; j < 4; ++j) {
      const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + kPackRows * 2 + 32 * j));
      w[j] = _mm256_shuffle_epi8(t, _mm256_and_si256(c, m4));
      w[4 + j] = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), m4));
    }
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

// The block math of the types above (Type: their unpacking): the byte dots with the token's
// pieces, less xoff, times the rows' and the token's scales.
template <typename Type>
struct ByteDot {
  using Act = block_q8_0;
  static constexpr int64_t kCols = QK8_0;
  static constexpr size_t kBlockBytes = Type::kBlockBytes;
  static constexpr int kXoff = 1;

  // One token, 8 rows.
  __attribute__((always_inline)) static __m256 decode(const uint8_t* g, const Act& b, const int32_t* xoff, __m256 acc) {
    __m256i w[8];
    Type::unpack8(g, w);
    __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();  // two chains: half the latency
    for (int k = 0; k < 8; k += 2) {
      even = _mm256_dpbusd_epi32(even, w[k], piece256(b, k));
      odd = _mm256_dpbusd_epi32(odd, w[k + 1], piece256(b, k + 1));
    }
    const __m256i dot = _mm256_sub_epi32(_mm256_add_epi32(even, odd), _mm256_set1_epi32(*xoff));
    const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g))),
                                       _mm256_set1_ps(token_scale(b)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc);
  }

  // Up to kPackTokens tokens, 16 rows.
  template <int T>
  __attribute__((always_inline)) static void block16(const uint8_t* a, const uint8_t* b, const Act* const* x,
                                                     const int32_t* const* xoff, __m512* acc) {
    __m512i w[8];
    Type::unpack16(a, b, w);
    const __m512 dw = join_halves_as_ps(a, b);
    for (int t = 0; t < T; ++t) {
      const Act& blk = *x[t];
      __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
      for (int k = 0; k < 8; k += 2) {
        even = _mm512_dpbusd_epi32(even, w[k], piece512(blk, k));
        odd = _mm512_dpbusd_epi32(odd, w[k + 1], piece512(blk, k + 1));
      }
      const __m512i dot = _mm512_sub_epi32(_mm512_add_epi32(even, odd), _mm512_set1_epi32(*xoff[t]));
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(token_scale(blk)));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[t]);
    }
  }
};

// ---- Q4_K and Q5_K ----
//
// Layout::Packed8 Q4_K kernels for AVX-512 VNNI (packed.h has the layout). Per super-block and
// row lane: for each sub-block pair, the low and high nibbles' dots with the token (8 dpbusd
// each, exact) times the rows' 6-bit scales (one 32-bit multiply each); the mins as int16 pairs
// against the token's sub-block sums (one madd); then t = d * isum - dmin * msum (one multiply,
// one fused negative multiply-add) and acc += t * d_token (one fma): the scalar reference's
// steps (packed.cpp k4_x8_dot_scalar), so the same bits on every path. Q5_K (Fifth) is
// the same with each nibble's fifth bit ORed on from its high-bit chunk.
inline __m256i bytes8_as_epi32(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// ---- up to kPackTokens tokens, 16 rows (two groups in one register) ----

inline __m512i join_scales(const uint8_t* a, const uint8_t* b) {
  return _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a)),
                                                 _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b))));
}

namespace vnni {

template <bool Fifth>
struct K4 {
  using Act = block_q8_K;
  static constexpr int64_t kCols = QK_K;
  static constexpr size_t kBlockBytes = k4_block_bytes<Fifth>;
  static constexpr int kXoff = kPackedQ4_KXoff;

  // One token, 8 rows.
  __attribute__((always_inline)) static __m256 decode(const uint8_t* g, const Act& b, const int32_t* pairs,
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

  // Up to kPackTokens tokens, 16 rows (two groups in one register).
  template <int T>
  __attribute__((always_inline)) static void block16(const uint8_t* a, const uint8_t* b, const Act* const* x,
                                                     const int32_t* const* xoff, __m512* acc) {
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
        const auto& blk = *x[t];
        __m512i dlo = _mm512_setzero_si512(), dhi = _mm512_setzero_si512();
        for (int j = 0; j < 8; ++j) {
          dlo = _mm512_dpbusd_epi32(dlo, lo[j], _mm512_broadcastd_epi32(_mm_loadu_si32(blk.qs + 64 * p + 4 * j)));
          dhi = _mm512_dpbusd_epi32(dhi, hi[j], _mm512_broadcastd_epi32(_mm_loadu_si32(blk.qs + 64 * p + 32 + 4 * j)));
        }
        isum[t] =
            _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(dlo, sc_lo), _mm512_mullo_epi32(dhi, sc_hi)));
        const int32_t pair = xoff[t][p];
        msum[t] = _mm512_add_epi32(msum[t], _mm512_madd_epi16(mins, _mm512_set1_epi32(pair)));
      }
    }
    const __m512 d = join_halves_as_ps(a, b), dmin = join_halves_as_ps(a + 16, b + 16);
    for (int t = 0; t < T; ++t) {
      const auto& blk = *x[t];
      const __m512 v =
          _mm512_fnmadd_ps(dmin, _mm512_cvtepi32_ps(msum[t]), _mm512_mul_ps(d, _mm512_cvtepi32_ps(isum[t])));
      acc[t] = _mm512_fmadd_ps(v, _mm512_set1_ps(blk.d), acc[t]);
    }
  }
};

}  // namespace vnni

// ---- Q6_K ----
//
// Layout::Packed8 Q6_K kernels for AVX-512 VNNI (packed.h has the layout). One chunk of low
// nibbles pair and one chunk of high bits give four 4-byte pieces of every row (pieces c,
// c + 16, c + 32, c + 48): (low nibble | 2 high bits << 4) - 32, signed. Each is dotted with the
// token's piece (stored +128, unsigned) by one dpbusd; a 16-element sub-block's four dots are
// multiplied by the rows' scale, and the row's constant takes the +128 off. Then
// acc += isum * (d * d_token): the scalar reference's steps (packed.cpp q6_Kx8_dot).

namespace vnni {

struct Q6_K {
  using Act = block_q8_K;
  static constexpr int64_t kCols = QK_K;
  static constexpr size_t kBlockBytes = kPackedQ6_KBlockBytes;
  static constexpr int kXoff = 0;

  // One token, 8 rows.
  __attribute__((always_inline)) static __m256 decode(const uint8_t* g, const Act& b, const int32_t*, __m256 acc) {
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
    const __m256 scale =
        _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g))), _mm256_set1_ps(b.d));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc);
  }

  // Up to kPackTokens tokens, 16 rows (two groups in one register).
  template <int T>
  __attribute__((always_inline)) static void block16(const uint8_t* a, const uint8_t* b, const Act* const* x,
                                                     const int32_t* const*, __m512* acc) {
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
          const auto& blk = *x[t];
          for (int quarter = 0; quarter < 4; ++quarter)
            dot[t][quarter] = _mm512_dpbusd_epi32(
                dot[t][quarter], _mm512_broadcastd_epi32(_mm_loadu_si32(blk.qs + 4 * (c + 16 * quarter))), w[quarter]);
        }
      }
      for (int quarter = 0; quarter < 4; ++quarter) {
        const size_t at = kPackedQ6_KScales + 8 * (s + 4 * quarter);
        const __m512i sc =
            _mm512_cvtepi8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a + at)),
                                                    _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + at))));
        for (int t = 0; t < T; ++t) isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(dot[t][quarter], sc));
      }
    }
    const __m512i offsets = join_groups(a + kPackedQ6_KOffsets, b + kPackedQ6_KOffsets);
    const __m512 d = join_halves_as_ps(a, b);
    for (int t = 0; t < T; ++t) {
      const auto& blk = *x[t];
      const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(blk.d));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum[t], offsets)), scale, acc[t]);
    }
  }
};

}  // namespace vnni

// VNNI's byte dot, the accumulating form the shared Q4_0 kernel takes.
inline __m256i dot_acc_u8i8_vnni(__m256i acc, __m256i a, __m256i b) { return _mm256_dpbusd_epi32(acc, a, b); }

}  // namespace clusterctl::kernels::detail::x86

namespace clusterctl::kernels::detail {

void fill_packed_vnni(KernelTable& t) {
  using namespace x86;
  t.packed[slot(GgmlType::Q4_0)] = {q4_0x8_dot<dot_acc_u8i8_vnni>, q4_0x8_chunked_dot<dot_acc_u8i8_vnni>,
                                    packed_tokens_dot<Rows16Kernels<ByteDot<Q4_0Packed>>>,
                                    packed_tokens_chunked_dot<Rows16Kernels<ByteDot<Q4_0Packed>>>};
  t.packed[slot(GgmlType::Q8_0)] = Rows16Kernels<ByteDot<Q8_0Packed>>::kernels();
  t.packed[slot(GgmlType::IQ4_NL)] = Rows16Kernels<ByteDot<Iq4NlPacked>>::kernels();
  t.packed[slot(GgmlType::Q4_K)] = Rows16Kernels<vnni::K4<false>>::kernels();
  t.packed[slot(GgmlType::Q5_K)] = Rows16Kernels<vnni::K4<true>>::kernels();
  t.packed[slot(GgmlType::Q2_K)] = Rows8Kernels<Q2_K<true>>::kernels();
  t.packed[slot(GgmlType::Q3_K)] = Rows8Kernels<Q3_K<true>>::kernels();
  t.packed[slot(GgmlType::Q6_K)] = Rows16Kernels<vnni::Q6_K>::kernels();
  t.packed[slot(GgmlType::IQ4_XS)] = Rows8Kernels<Iq4Xs<true>>::kernels();
}

}  // namespace clusterctl::kernels::detail
