// AVX-512 (F/BW/VL) + VNNI tiles for prompt processing: R weight rows x C tokens for
// the types models are mostly made of (Q4_0, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K) and for F32/F16/BF16. The
// weight blocks are unpacked once per tile and reused for every token, the activation blocks
// once and reused for every row, and each (row, token) pair costs one or two VNNI instructions
// per 64 elements. (Decoding has its own kernels: rows_vnni.cpp, packed_vnni.cpp.)
// gcc 12's AVX-512 insert intrinsics pass _mm512_undefined_*() as their unused merge source and
// then warn that it may be uninitialised (a false positive, fixed in gcc 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "worker/kernels/blocks.h"
#include "worker/kernels/half.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/x86/avx2_helpers.h"

namespace clusterctl::kernels::detail {
namespace {

using x86::h2f;
using x86::k4_scales_mins;

// Lanes 8..15 (AVX-512F only: extractf32x8 would need DQ).
inline __m256 high_half(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }

inline __m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_zextsi256_si512(lo), hi, 1); }

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// Double accumulators for the chunked tiles: each float lane of an R x P tile of accumulators
// is added into a double lane at the end of a chunk and the float restarts from zero. (Lane by
// lane: no shuffles; the lanes are summed once at the end, in double.) Here the two halves of a
// register are two tokens; OneToken below serves tiles with one token per register.
template <int R, int P>
struct DoubleLanes {
  __m512d v[R][P][2];
  DoubleLanes() {
    for (auto& row : v)
      for (auto& p : row) p[0] = p[1] = _mm512_setzero_pd();
  }
  void fold(__m512 (&acc)[R][P]) {
    for (int r = 0; r < R; ++r)
      for (int p = 0; p < P; ++p) {
        v[r][p][0] = _mm512_add_pd(v[r][p][0], _mm512_cvtps_pd(_mm512_castps512_ps256(acc[r][p])));
        v[r][p][1] = _mm512_add_pd(v[r][p][1], _mm512_cvtps_pd(high_half(acc[r][p])));
        acc[r][p] = _mm512_setzero_ps();
      }
  }
};

// For one token per register: the two float halves are added first (a fixed order within the
// chunk), so a fold is one add, one conversion and one double add per register.
template <int R, int C>
struct DoubleLanesOneToken {
  __m512d v[R][C];
  DoubleLanesOneToken() {
    for (auto& row : v)
      for (auto& a : row) a = _mm512_setzero_pd();
  }
  void fold(__m512 (&acc)[R][C]) {
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) {
        const __m256 sum8 = _mm256_add_ps(_mm512_castps512_ps256(acc[r][c]), high_half(acc[r][c]));
        v[r][c] = _mm512_add_pd(v[r][c], _mm512_cvtps_pd(sum8));
        acc[r][c] = _mm512_setzero_ps();
      }
  }
  double sum(int r, int c) const { return _mm512_reduce_add_pd(v[r][c]); }
};

// ---- Q8_0-activation types: one block of two tokens per register --------------------------
//
// ggml (its vec_dot and llamafile's tiles, which llama.cpp uses for prompts) sums a Q8_0 dot
// in one 8-lane accumulator, block after block, and reduces it with hsum at the end. The
// tiles keep that order (within each matmul column slice), so these layers of a prompt give
// llama.cpp's bits; any last-bit difference is amplified by the next activation quantisation.
// Lanes 0..7 of a register hold one token's block, lanes 8..15 the next token's same block,
// and the weight block is broadcast to both halves. (The AVX2 decode dot keeps four
// accumulators: one fma chain measured ~4 % slower on cache-resident rows.)

// The Q8_0 activations rewritten for the Q4_0/Q5_0/Q8_0 tiles, per 32-element block: 32 bytes
// y + 128 (unsigned, for VNNI's unsigned x signed product) and the scale repeated 8 times.
constexpr int kQ8BlockBytes = 64;
constexpr int kQ8BytesPer64 = 2 * kQ8BlockBytes;

void expand_q8_0(const void* x_row, int64_t n, uint8_t* out) {
  const auto* yb = static_cast<const block_q8_0*>(x_row);
  const int64_t nb = n / QK8_0;
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t b = 0; b < nb; ++b, out += kQ8BlockBytes) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_xor_si256(load256(yb[b].qs), bias));
    _mm256_storeu_ps(reinterpret_cast<float*>(out + 32), _mm256_set1_ps(h2f(yb[b].d)));
  }
}

// One block of weights as signed bytes in the activations' element order, and its scale.
struct Q4_0Weights {
  static __m256i load(const uint8_t* row, int64_t b, float* d) {
    const auto* wb = reinterpret_cast<const block_q4_0*>(row) + b;
    const __m128i bits = load128(wb->qs), m4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    *d = h2f(wb->d);
    // Low nibbles are elements 0..15, high nibbles 16..31; stored +8.
    return _mm256_set_m128i(_mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bits, 4), m4), eight),
                            _mm_sub_epi8(_mm_and_si128(bits, m4), eight));
  }
};

// Q5_0 (what Q4_K_M files hold where rows are not whole 256-blocks): the nibbles with each
// element's fifth bit; nibble | 0xf0 where that bit is clear is (nibble | bit << 4) - 16.
struct Q5_0Weights {
  static __m256i load(const uint8_t* row, int64_t b, float* d) {
    const auto* wb = reinterpret_cast<const block_q5_0*>(row) + b;
    const __m128i bits = load128(wb->qs), m4 = _mm_set1_epi8(0x0f);
    *d = h2f(wb->d);
    const __m256i nibbles = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bits, 4), m4), _mm_and_si128(bits, m4));
    return _mm256_or_si256(nibbles,
                           _mm256_andnot_si256(x86::spread_bits(wb->qh), _mm256_set1_epi8(static_cast<char>(0xf0))));
  }
};

struct Q8_0Weights {
  static __m256i load(const uint8_t* row, int64_t b, float* d) {
    const auto* wb = reinterpret_cast<const block_q8_0*>(row) + b;
    *d = h2f(wb->d);
    return load256(wb->qs);
  }
};

// Q4_0, Q5_0 and Q8_0 weights against expanded Q8_0 activations. Per (row, token pair) and block:
// one dpbusd, one convert, one multiply of the scales, one fma; the weights' unpacking is
// shared by kTokens tokens, the pairing of two tokens' activations by kRows rows.
template <typename Weights>
struct Q8Tile {
  static constexpr int kRows = 4, kTokens = 8;
  template <int R, int C>
  static void run(int64_t n, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                  size_t y_stride, bool accumulate) {
    run_impl<R, C, false>(n, n, w, w_stride, x, x_stride, y, nullptr, y_stride, accumulate);
  }
  template <int R, int C>
  static void run_chunked(int64_t n, int64_t chunk, const uint8_t* w, size_t w_stride, const uint8_t* x,
                          size_t x_stride, double* y, size_t y_stride) {
    run_impl<R, C, true>(n, chunk, w, w_stride, x, x_stride, nullptr, y, y_stride, true);
  }
  // Chunked: the float accumulators restart every `chunk` elements after being folded, lane by
  // lane, into double accumulators (matmul_row_parallel).
  template <int R, int C, bool Chunked>
  static void run_impl(int64_t n, int64_t chunk, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride,
                       float* y, double* yd, size_t y_stride, bool accumulate) {
    constexpr int P = (C + 1) / 2;  // token pairs; an odd last token is paired with zeros
    __m512 acc[R][P];
    DoubleLanes<R, P> dacc;
    for (auto& row : acc)
      for (auto& a : row) a = _mm512_setzero_ps();
    const int64_t nb = n / QK8_0;
    const int64_t cb = Chunked ? chunk / QK8_0 : nb;
    for (int64_t b = 0; b < nb; ++b) {
      if (Chunked && b % cb == 0 && b > 0) dacc.fold(acc);
      __m512i wv[R], wcorr[R];
      __m512 dw[R];
      for (int r = 0; r < R; ++r) {
        float d;
        const __m256i w256 = Weights::load(w + r * w_stride, b, &d);
        wv[r] = _mm512_inserti64x4(_mm512_castsi256_si512(w256), w256, 1);
        dw[r] = _mm512_set1_ps(d);
        // The activations are y + 128: take 128 * sum(w) off each lane's sum.
        const __m512i wsum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), wv[r]);
        wcorr[r] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(wsum, 7));
      }
      for (int p = 0; p < P; ++p) {
        const uint8_t* x0 = x + (2 * p) * x_stride + b * kQ8BlockBytes;
        const bool second = 2 * p + 1 < C;
        const uint8_t* x1 = x0 + x_stride;
        const __m512i yv = join(load256(x0), second ? load256(x1) : _mm256_set1_epi8(static_cast<char>(0x80)));
        const __m512 dy = _mm512_castpd_ps(_mm512_insertf64x4(
            _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(reinterpret_cast<const float*>(x0 + 32)))),
            second ? _mm256_castps_pd(_mm256_loadu_ps(reinterpret_cast<const float*>(x1 + 32))) : _mm256_setzero_pd(),
            1));
        for (int r = 0; r < R; ++r)
          acc[r][p] = _mm512_fmadd_ps(_mm512_mul_ps(dw[r], dy),
                                      _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(wcorr[r], yv, wv[r])), acc[r][p]);
      }
    }
    if constexpr (Chunked) {
      dacc.fold(acc);
      for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) yd[c * y_stride + r] += _mm512_reduce_add_pd(dacc.v[r][c / 2][c % 2]);
      return;
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) {
        const __m256 half = c % 2 ? high_half(acc[r][c / 2]) : _mm512_castps512_ps256(acc[r][c / 2]);
        y[c * y_stride + r] = (accumulate ? y[c * y_stride + r] : 0.f) + x86::hsum(half);
      }
  }
};

// ---- K-quants against Q8_K: 64 elements per register, integer scales applied with dpwssd ----

// 16 int16 lanes of a, then 16 of b.
inline __m512i two_scales16(int a, int b) {
  return join(_mm256_set1_epi16(static_cast<short>(a)), _mm256_set1_epi16(static_cast<short>(b)));
}

// Q4_K, and Q5_K (Fifth: a fifth bit per weight from qh) share scales, mins and layout.
template <typename Block, bool Fifth>
struct K4Tile {
  // Adds block i of R rows (w) against C tokens (x) into acc.
  template <int R, int C>
  __attribute__((always_inline)) static void add_block(int64_t i, const uint8_t* w, size_t w_stride, const uint8_t* x,
                                                       size_t x_stride, __m512 (&acc)[R][C]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const block_q8_K* yb[C];
    float dy[C];
    __m256 bsum_f[C];  // d_y * (sum of the activations of each 32-element sub-block)
    for (int c = 0; c < C; ++c) {
      yb[c] = reinterpret_cast<const block_q8_K*>(x + c * x_stride) + i;
      dy[c] = yb[c]->d;
      const __m256i bs = load256(yb[c]->bsums);
      const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
      bsum_f[c] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(pairs)), _mm256_set1_ps(dy[c]));
    }
    const Block* wb[R];
    float dw[R];
    __m256 min_f[R];  // -dmin_w * min of each sub-block
    alignas(16) uint8_t sc[R][16];
    for (int r = 0; r < R; ++r) {
      wb[r] = reinterpret_cast<const Block*>(w + r * w_stride) + i;
      dw[r] = h2f(wb[r]->d);
      const __m128i sm = k4_scales_mins(wb[r]->scales);
      _mm_store_si128(reinterpret_cast<__m128i*>(sc[r]), sm);
      min_f[r] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8))),
                               _mm256_set1_ps(-h2f(wb[r]->dmin)));
    }
    __m512i isum[R][C];
    for (auto& row : isum)
      for (auto& s : row) s = _mm512_setzero_si512();
    for (int k = 0; k < 4; ++k) {
      __m512i wv[R], scl[R];
      for (int r = 0; r < R; ++r) {
        const __m256i bits = load256(wb[r]->qs + 32 * k);
        __m256i lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
        if constexpr (Fifth) {  // bit 2k of qh[l] tops element l of the low half, bit 2k+1 the high
          const __m256i hbits = load256(wb[r]->qh), one = _mm256_set1_epi8(1);
          lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * k), one), 4));
          hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * k + 1), one), 4));
        }
        wv[r] = join(lo, hi);
        scl[r] = two_scales16(sc[r][2 * k], sc[r][2 * k + 1]);
      }
      for (int c = 0; c < C; ++c) {
        const __m512i yv = _mm512_loadu_si512(yb[c]->qs + 64 * k);
        for (int r = 0; r < R; ++r)
          isum[r][c] = _mm512_dpwssd_epi32(isum[r][c], _mm512_maddubs_epi16(wv[r], yv), scl[r]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) {
        acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r][c]), _mm512_set1_ps(dw[r] * dy[c]), acc[r][c]);
        acc[r][c] = _mm512_fmadd_ps(_mm512_zextps256_ps512(min_f[r]), _mm512_zextps256_ps512(bsum_f[c]), acc[r][c]);
      }
  }
};

struct Q6_KTile {
  template <int R, int C>
  __attribute__((always_inline)) static void add_block(int64_t i, const uint8_t* w, size_t w_stride, const uint8_t* x,
                                                       size_t x_stride, __m512 (&acc)[R][C]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x03);
    const block_q8_K* yb[C];
    for (int c = 0; c < C; ++c) yb[c] = reinterpret_cast<const block_q8_K*>(x + c * x_stride) + i;
    const block_q6_K* wb[R];
    __m256i sc16[R];
    __m512i isum[R][C];
    for (int r = 0; r < R; ++r) {
      wb[r] = reinterpret_cast<const block_q6_K*>(w + r * w_stride) + i;
      sc16[r] = _mm256_cvtepi8_epi16(load128(wb[r]->scales));
      // The 6-bit values are stored +32: start each sum at -32 * sum(scale * block sum of y).
      const __m256i neg32 = _mm256_mullo_epi16(sc16[r], _mm256_set1_epi16(-32));
      for (int c = 0; c < C; ++c) isum[r][c] = _mm512_zextsi256_si512(_mm256_madd_epi16(neg32, load256(yb[c]->bsums)));
    }
    for (int half = 0; half < 2; ++half) {
      for (int part = 0; part < 2; ++part) {
        // Sub-blocks 8*half + 4*part .. +3, eight int16 lanes each.
        const int g = 8 * half + 4 * part;
        const __m512i idx = join(
            _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(g + 1)), _mm_set1_epi16(static_cast<short>(g))),
            _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(g + 3)), _mm_set1_epi16(static_cast<short>(g + 2))));
        __m512i wv[R], scl[R];
        for (int r = 0; r < R; ++r) {
          const uint8_t* ql = wb[r]->ql + 64 * half;
          const __m256i hbits = _mm256_srli_epi16(load256(wb[r]->qh + 32 * half), 4 * part);
          __m256i lo = load256(ql), hi = load256(ql + 32);
          if (part) {
            lo = _mm256_srli_epi16(lo, 4);
            hi = _mm256_srli_epi16(hi, 4);
          }
          const __m256i q_a =
              _mm256_or_si256(_mm256_and_si256(lo, m4), _mm256_slli_epi16(_mm256_and_si256(hbits, m2), 4));
          const __m256i q_b = _mm256_or_si256(_mm256_and_si256(hi, m4),
                                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2), m2), 4));
          wv[r] = join(q_a, q_b);
          scl[r] = _mm512_permutexvar_epi16(idx, _mm512_zextsi256_si512(sc16[r]));
        }
        for (int c = 0; c < C; ++c) {
          const __m512i yv = _mm512_loadu_si512(yb[c]->qs + 128 * half + 64 * part);
          for (int r = 0; r < R; ++r)
            isum[r][c] = _mm512_dpwssd_epi32(isum[r][c], _mm512_maddubs_epi16(wv[r], yv), scl[r]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        acc[r][c] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r][c]), _mm512_set1_ps(h2f(wb[r]->d) * yb[c]->d), acc[r][c]);
  }
};

// The frame of the K-quant tiles (one token per register, one 256-element block per step):
// Type::add_block<R, C>(i, w, w_stride, x, x_stride, acc) adds block i of the R rows against the
// C tokens into acc; the frame keeps the float sums, restarts them every chunk (folded into
// double) and stores them.
template <typename Type>
struct KQuantTile {
  static constexpr int kRows = 2, kTokens = 4;
  template <int R, int C>
  static void run(int64_t n, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                  size_t y_stride, bool accumulate) {
    run_impl<R, C, false>(n, n, w, w_stride, x, x_stride, y, nullptr, y_stride, accumulate);
  }
  template <int R, int C>
  static void run_chunked(int64_t n, int64_t chunk, const uint8_t* w, size_t w_stride, const uint8_t* x,
                          size_t x_stride, double* y, size_t y_stride) {
    run_impl<R, C, true>(n, chunk, w, w_stride, x, x_stride, nullptr, y, y_stride, true);
  }
  template <int R, int C, bool Chunked>
  static void run_impl(int64_t n, int64_t chunk, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride,
                       float* y, double* yd, size_t y_stride, bool accumulate) {
    __m512 acc[R][C];
    DoubleLanesOneToken<R, C> dacc;
    for (auto& row : acc)
      for (auto& a : row) a = _mm512_setzero_ps();
    const int64_t cb = Chunked ? chunk / QK_K : n / QK_K;
    for (int64_t i = 0; i < n / QK_K; ++i) {
      if (Chunked && i % cb == 0 && i > 0) dacc.fold(acc);
      Type::template add_block<R, C>(i, w, w_stride, x, x_stride, acc);
    }
    if constexpr (Chunked) {
      dacc.fold(acc);
      for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) yd[c * y_stride + r] += dacc.sum(r, c);
      return;
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        y[c * y_stride + r] = (accumulate ? y[c * y_stride + r] : 0.f) + _mm512_reduce_add_ps(acc[r][c]);
  }
};

// ---- float types: F32, F16, BF16 weights against activations of the same type ---------------

struct F32Elems {
  static constexpr int kBytes = 4;
  static __m512 load16(const uint8_t* p) { return _mm512_loadu_ps(p); }
  static float scalar(const uint8_t* p) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
};
struct F16Elems {
  static constexpr int kBytes = 2;
  static __m512 load16(const uint8_t* p) { return _mm512_cvtph_ps(load256(p)); }
  static float scalar(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return h2f(h);
  }
};
struct BF16Elems {
  static constexpr int kBytes = 2;
  static __m512 load16(const uint8_t* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load256(p)), 16));
  }
  static float scalar(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return bf16_to_float(h);
  }
};

// 16 elements per step; each weight vector is converted once for kTokens tokens and each
// activation vector once for kRows rows, so a pair costs one fma per 16 elements.
template <typename Elems>
struct FloatTile {
  static constexpr int kRows = 4, kTokens = 4;
  template <int R, int C>
  static void run(int64_t n, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                  size_t y_stride, bool accumulate) {
    __m512 acc[R][C];
    for (auto& row : acc)
      for (auto& a : row) a = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
      __m512 wv[R];
      for (int r = 0; r < R; ++r) wv[r] = Elems::load16(w + r * w_stride + k * Elems::kBytes);
      for (int c = 0; c < C; ++c) {
        const __m512 xv = Elems::load16(x + c * x_stride + k * Elems::kBytes);
        for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) {
        float sum = _mm512_reduce_add_ps(acc[r][c]);
        for (int64_t j = k; j < n; ++j)
          sum +=
              Elems::scalar(w + r * w_stride + j * Elems::kBytes) * Elems::scalar(x + c * x_stride + j * Elems::kBytes);
        y[c * y_stride + r] = (accumulate ? y[c * y_stride + r] : 0.f) + sum;
      }
  }
};

// ---- glue: run-time tile sizes to the compile-time instances --------------------------------

template <typename Tile>
void tile_dispatch(int64_t n, const uint8_t* w, size_t w_stride, int n_rows, const uint8_t* x, size_t x_stride,
                   int n_tokens, float* y, size_t y_stride, bool accumulate) {
  using Fn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, size_t, bool);
  static constexpr auto table = []<int... Is>(std::integer_sequence<int, Is...>) {
    return std::array<Fn, sizeof...(Is)>{&Tile::template run<Is / Tile::kTokens + 1, Is % Tile::kTokens + 1>...};
  }
  (std::make_integer_sequence<int, Tile::kRows * Tile::kTokens>{});
  table[(n_rows - 1) * Tile::kTokens + (n_tokens - 1)](n, w, w_stride, x, x_stride, y, y_stride, accumulate);
}

template <typename Tile>
void chunked_tile_dispatch(int64_t n, int64_t chunk, const uint8_t* w, size_t w_stride, int n_rows, const uint8_t* x,
                           size_t x_stride, int n_tokens, double* y, size_t y_stride) {
  using Fn = void (*)(int64_t, int64_t, const uint8_t*, size_t, const uint8_t*, size_t, double*, size_t);
  static constexpr auto table = []<int... Is>(std::integer_sequence<int, Is...>) {
    return std::array<Fn, sizeof...(Is)>{
        &Tile::template run_chunked<Is / Tile::kTokens + 1, Is % Tile::kTokens + 1>...};
  }
  (std::make_integer_sequence<int, Tile::kRows * Tile::kTokens>{});
  table[(n_rows - 1) * Tile::kTokens + (n_tokens - 1)](n, chunk, w, w_stride, x, x_stride, y, y_stride);
}

template <typename Tile>
void install_chunked(KernelTable& t, GgmlType type) {
  t.tile[slot(type)].chunked = chunked_tile_dispatch<Tile>;
}

// Only the tiles are installed: measured on Zen 4, the 1 x 1 tile streams weights at about half
// the rate of the AVX2 vec_dot (its per-block set-up is paid for one row and one token), so
// decoding keeps the AVX2 vec_dot. The matmul tests check the tiles against the scalar vec_dot.
template <typename Tile>
void install(KernelTable& t, GgmlType type) {
  t.tile[slot(type)] = {tile_dispatch<Tile>, Tile::kRows, Tile::kTokens};
}

}  // namespace

void fill_tiles_vnni(KernelTable& t) {
  install<Q8Tile<Q4_0Weights>>(t, GgmlType::Q4_0);
  install<Q8Tile<Q5_0Weights>>(t, GgmlType::Q5_0);
  install<Q8Tile<Q8_0Weights>>(t, GgmlType::Q8_0);
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q8_0}) {
    t.tile[slot(type)].expand = expand_q8_0;
    t.tile[slot(type)].expanded_bytes_per_64 = kQ8BytesPer64;
  }
  install<KQuantTile<K4Tile<block_q4_K, false>>>(t, GgmlType::Q4_K);
  install<KQuantTile<K4Tile<block_q5_K, true>>>(t, GgmlType::Q5_K);
  install<KQuantTile<Q6_KTile>>(t, GgmlType::Q6_K);
  install_chunked<Q8Tile<Q4_0Weights>>(t, GgmlType::Q4_0);
  install_chunked<Q8Tile<Q5_0Weights>>(t, GgmlType::Q5_0);
  install_chunked<Q8Tile<Q8_0Weights>>(t, GgmlType::Q8_0);
  install_chunked<KQuantTile<K4Tile<block_q4_K, false>>>(t, GgmlType::Q4_K);
  install_chunked<KQuantTile<K4Tile<block_q5_K, true>>>(t, GgmlType::Q5_K);
  install_chunked<KQuantTile<Q6_KTile>>(t, GgmlType::Q6_K);
  install<FloatTile<F32Elems>>(t, GgmlType::F32);
  install<FloatTile<F16Elems>>(t, GgmlType::F16);
  install<FloatTile<BF16Elems>>(t, GgmlType::BF16);
}

}  // namespace clusterctl::kernels::detail
