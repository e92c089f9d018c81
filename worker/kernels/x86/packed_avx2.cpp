// Layout::Packed8 kernels for AVX2 without VNNI, for Q8_0, IQ4_NL, Q4_K, Q5_K, Q2_K, Q3_K and Q6_K (Q4_0's, Q2_K's
// and Q3_K's in packed_q4_0.h, packed_q2_k.h, packed_q3_k.h). AVX2's byte dot (maddubs) sums two products into a
// saturating 16-bit lane, so each type keeps its 16-bit sums below 32767 and widens them as late as that allows:
//   Q8_0: |w| x sign-moved token (at most 2 * 128 * 127 per lane), widened every piece;
//   IQ4_NL: the same with the nibbles mapped through the table (|w| at most 127);
//   Q4_K: nibble x token, 8 pieces summed in 16 bits (at most 30480), widened once per sub-block
//         by a multiply-add with the rows' scale in both halves of the lane, which also scales;
//   Q5_K: the same with the fifth bits ORed on, 4 pieces per 16-bit sum (at most 31496);
//   Q2_K: 2-bit weights x token, a sub-block's 4 pieces summed (at most 3048), widened with the scale;
//   Q3_K: 3-bit weights x token from the sub-block's -4 share (at most 15360), widened with the scale;
//   Q6_K: token (+128) x (q - 32), 2 pieces summed (at most 32640), widened and scaled alike.
// Every integer is exact, and the float steps per block are the scalar reference's
// (packed.cpp), so each kernel gives the reference's bits, alone or in a batch. Prompt
// kernels unpack one group's weights once for up to kPackTokens tokens (GroupByGroup runs two).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "worker/kernels/blocks.h"
#include "worker/kernels/packed.h"
#include "worker/kernels/packed_tokens.h"
#include "worker/kernels/x86/avx2_helpers.h"
#include "worker/kernels/x86/packed_iq4_xs.h"
#include "worker/kernels/x86/packed_k4.h"
#include "worker/kernels/x86/packed_q2_k.h"
#include "worker/kernels/x86/packed_q3_k.h"
#include "worker/kernels/x86/packed_q4_0.h"
#include "worker/kernels/x86/packed_q6_k.h"
#include "worker/kernels/x86/packed_rows8.h"

namespace clusterctl::kernels::detail::x86::avx2 {

inline __m256i piece(const int8_t* q) { return _mm256_broadcastd_epi32(_mm_loadu_si32(q)); }
inline __m256 halves_as_ps(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Each row's scale byte in both 16-bit halves of its lane: madd with 16-bit sums then gives
// scale * (their sum) in 32 bits.
inline __m256i u8_scale_pairs(const uint8_t* p) {
  const __m256i s = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  return _mm256_or_si256(s, _mm256_slli_epi32(s, 16));
}
inline __m256i i8_scale_pairs(const uint8_t* p) {
  const __m128i s = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  return _mm256_set_m128i(_mm_unpackhi_epi16(s, s), _mm_unpacklo_epi16(s, s));
}

// ---- Q8_0 (stored +128; flipping the top bit gives the file's signed quants back) ----

// 8 rows' exact dot of one 4-byte piece with the token's: |w| x (token with w's sign).
inline __m256i q8_0_piece_dot(__m256i w, __m256i abs_w, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(y, w)), _mm256_set1_epi16(1));
}
inline __m256i q8_0_signed(const uint8_t* p) {
  return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), _mm256_set1_epi8(char(0x80)));
}

// xoff is the +128's share of the dot, which the signed quants never add.
struct Q8_0 {
  using Act = block_q8_0;
  static constexpr int64_t kCols = QK8_0;
  static constexpr size_t kBlockBytes = kPackedQ8_0BlockBytes;
  static constexpr int kXoff = 0;

  __attribute__((always_inline)) static __m256 decode(const uint8_t* g, const Act& b, const int32_t*, __m256 acc) {
    __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();  // two chains: half the latency
    for (int k = 0; k < 8; k += 2) {
      const __m256i w0 = q8_0_signed(g + kPackRows * 2 + 32 * k), w1 = q8_0_signed(g + kPackRows * 2 + 32 * (k + 1));
      even = _mm256_add_epi32(even, q8_0_piece_dot(w0, _mm256_sign_epi8(w0, w0), piece(b.qs + 4 * k)));
      odd = _mm256_add_epi32(odd, q8_0_piece_dot(w1, _mm256_sign_epi8(w1, w1), piece(b.qs + 4 * (k + 1))));
    }
    const __m256 scale = _mm256_mul_ps(halves_as_ps(g), _mm256_set1_ps(_cvtsh_ss(b.d)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(even, odd)), scale, acc);
  }

  template <int T>
  __attribute__((always_inline)) static void block(const uint8_t* g, const Act* const* b, const int32_t* const*,
                                                   __m256* acc) {
    __m256i dot[T];
    for (int t = 0; t < T; ++t) dot[t] = _mm256_setzero_si256();
    for (int k = 0; k < 8; ++k) {
      const __m256i w = q8_0_signed(g + kPackRows * 2 + 32 * k), abs_w = _mm256_sign_epi8(w, w);
      for (int t = 0; t < T; ++t) dot[t] = _mm256_add_epi32(dot[t], q8_0_piece_dot(w, abs_w, piece(b[t]->qs + 4 * k)));
    }
    const __m256 dw = halves_as_ps(g);
    for (int t = 0; t < T; ++t) {
      const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(b[t]->d)));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[t]), scale, acc[t]);
    }
  }
};

// ---- IQ4_NL (Q4_0's layout; the nibbles through the table as signed bytes, so no xoff) ----

// Chunk j's low nibbles (elements 4j..4j+3 of each row) and high nibbles (16+4j..) as table values.
struct Iq4NlChunk {
  __m256i lo, hi;
};
inline Iq4NlChunk iq4_nl_chunk(const uint8_t* g, int j) {
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kValuesIq4nl)));
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + kPackRows * 2 + 32 * j));
  return {_mm256_shuffle_epi8(table, _mm256_and_si256(c, m4)),
          _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(c, 4), m4))};
}

struct Iq4Nl {
  using Act = block_q8_0;
  static constexpr int64_t kCols = QK4_NL;
  static constexpr size_t kBlockBytes = kPackedQ4_0BlockBytes;
  static constexpr int kXoff = 0;

  __attribute__((always_inline)) static __m256 decode(const uint8_t* g, const Act& b, const int32_t*, __m256 acc) {
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();  // two chains: half the latency
    for (int j = 0; j < 4; ++j) {
      const Iq4NlChunk w = iq4_nl_chunk(g, j);
      lo = _mm256_add_epi32(lo, q8_0_piece_dot(w.lo, _mm256_sign_epi8(w.lo, w.lo), piece(b.qs + 4 * j)));
      hi = _mm256_add_epi32(hi, q8_0_piece_dot(w.hi, _mm256_sign_epi8(w.hi, w.hi), piece(b.qs + 16 + 4 * j)));
    }
    const __m256 scale = _mm256_mul_ps(halves_as_ps(g), _mm256_set1_ps(_cvtsh_ss(b.d)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(lo, hi)), scale, acc);
  }

  template <int T>
  __attribute__((always_inline)) static void block(const uint8_t* g, const Act* const* b, const int32_t* const*,
                                                   __m256* acc) {
    __m256i dot[T];
    for (int t = 0; t < T; ++t) dot[t] = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const Iq4NlChunk w = iq4_nl_chunk(g, j);
      const __m256i abs_lo = _mm256_sign_epi8(w.lo, w.lo), abs_hi = _mm256_sign_epi8(w.hi, w.hi);
      for (int t = 0; t < T; ++t)
        dot[t] = _mm256_add_epi32(_mm256_add_epi32(dot[t], q8_0_piece_dot(w.lo, abs_lo, piece(b[t]->qs + 4 * j))),
                                  q8_0_piece_dot(w.hi, abs_hi, piece(b[t]->qs + 16 + 4 * j)));
    }
    const __m256 dw = halves_as_ps(g);
    for (int t = 0; t < T; ++t) {
      const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(b[t]->d)));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[t]), scale, acc[t]);
    }
  }
};

// ---- Q4_K (against Q8_K; packed.h has the layout) ----

// t = d * isum - dmin * msum, then acc += t * d_token: the reference's float steps.
inline __m256 q4_K_fold(const uint8_t* g, __m256i isum, __m256i msum, float d_token, __m256 acc) {
  const __m256 t = _mm256_fnmadd_ps(halves_as_ps(g + 16), _mm256_cvtepi32_ps(msum),
                                    _mm256_mul_ps(halves_as_ps(g), _mm256_cvtepi32_ps(isum)));
  return _mm256_fmadd_ps(t, _mm256_set1_ps(d_token), acc);
}

// Q5_K's weights (up to 31) allow 4 pieces in a 16-bit sum (4 * 2 * 31 * 127 = 31496), Q4_K's 8.
template <bool Fifth>
constexpr int k4_pieces_per_sum = Fifth ? 4 : 8;

// T tokens against a group, its weights unpacked once for all of them; one token is T = 1.
template <bool Fifth>
struct K4 {
  using Act = block_q8_K;
  static constexpr int64_t kCols = QK_K;
  static constexpr size_t kBlockBytes = k4_block_bytes<Fifth>;
  static constexpr int kXoff = kPackedQ4_KXoff;

  template <int T>
  __attribute__((always_inline)) static void block(const uint8_t* g, const Act* const* b, const int32_t* const* pairs,
                                                   __m256* acc) {
    const auto load = [g](size_t at) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + at)); };
    __m256i isum[T], msum[T];
    for (int t = 0; t < T; ++t) isum[t] = msum[t] = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {
      const uint8_t* sc = g + kPackedQ4_KScales + 16 * p;
      const __m256i sc_lo = u8_scale_pairs(sc), sc_hi = u8_scale_pairs(sc + 8);
      __m256i lo[T], hi[T], bits = _mm256_setzero_si256();  // 16-bit sums
      for (int t = 0; t < T; ++t) lo[t] = hi[t] = _mm256_setzero_si256();
      for (int j = 0; j < 8; ++j) {
        __m256i wl, wh;
        k4_chunk<Fifth, __m256i, Ops256>(load, p, j, bits, wl, wh);
        for (int t = 0; t < T; ++t) {
          lo[t] = _mm256_add_epi16(lo[t], _mm256_maddubs_epi16(wl, piece(b[t]->qs + 64 * p + 4 * j)));
          hi[t] = _mm256_add_epi16(hi[t], _mm256_maddubs_epi16(wh, piece(b[t]->qs + 64 * p + 32 + 4 * j)));
        }
        if ((j + 1) % k4_pieces_per_sum<Fifth> == 0)
          for (int t = 0; t < T; ++t) {
            isum[t] = _mm256_add_epi32(
                isum[t], _mm256_add_epi32(_mm256_madd_epi16(lo[t], sc_lo), _mm256_madd_epi16(hi[t], sc_hi)));
            lo[t] = hi[t] = _mm256_setzero_si256();
          }
      }
      const __m256i mins = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + kPackedQ4_KMins + 32 * p));
      for (int t = 0; t < T; ++t)
        msum[t] = _mm256_add_epi32(msum[t], _mm256_madd_epi16(mins, _mm256_set1_epi32(pairs[t][p])));
    }
    for (int t = 0; t < T; ++t) acc[t] = q4_K_fold(g, isum[t], msum[t], b[t]->d, acc[t]);
  }
};

// ---- Q6_K (against Q8_K tokens stored +128; packed.h has the layout) ----

// isum less the rows' +128 constant, then acc += isum * (d * d_token): the reference's steps.
inline __m256 q6_K_fold(const uint8_t* g, __m256i isum, float d_token, __m256 acc) {
  isum = _mm256_sub_epi32(isum, load256(g + kPackedQ6_KOffsets));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(halves_as_ps(g), _mm256_set1_ps(d_token)), acc);
}

struct Q6_K {
  using Act = block_q8_K;
  static constexpr int64_t kCols = QK_K;
  static constexpr size_t kBlockBytes = kPackedQ6_KBlockBytes;
  static constexpr int kXoff = 0;

  __attribute__((always_inline)) static __m256 decode(const uint8_t* g, const Act& b, const int32_t*, __m256 acc) {
    __m256i isum = _mm256_setzero_si256();
    for (int s = 0; s < 4; ++s) {  // sub-blocks s, s + 4, s + 8, s + 12 (quarters 0..3)
      for (int half = 0; half < 2; ++half) {
        __m256i sum16[4];
        for (int jj = 0; jj < 2; ++jj) {
          const int c = 4 * s + 2 * half + jj;
          __m256i w[4];
          q6_K_pieces<__m256i, Ops256>(load256(g + q6_K_low_chunk(c)), load256(g + q6_K_low_chunk(c + 16)),
                                       load256(g + q6_K_high_chunk(c)), w);
          for (int q = 0; q < 4; ++q) {
            const __m256i d = _mm256_maddubs_epi16(piece(b.qs + 4 * (c + 16 * q)), w[q]);
            sum16[q] = jj ? _mm256_add_epi16(sum16[q], d) : d;
          }
        }
        for (int q = 0; q < 4; ++q)
          isum = _mm256_add_epi32(isum,
                                  _mm256_madd_epi16(sum16[q], i8_scale_pairs(g + kPackedQ6_KScales + 8 * (s + 4 * q))));
      }
    }
    return q6_K_fold(g, isum, b.d, acc);
  }

  // One quarter's sub-block s + 4 * Q of a super-block for T tokens: pieces c = 4s .. 4s + 3,
  // each unpacked once, two at a time summed in 16 bits.
  template <int Q, int T>
  static void quarter(const uint8_t* g, int s, const Act* const* b, __m256i* isum) {
    const __m256i sc = i8_scale_pairs(g + kPackedQ6_KScales + 8 * (s + 4 * Q));
    for (int half = 0; half < 2; ++half) {
      __m256i sum16[T];
      for (int jj = 0; jj < 2; ++jj) {
        const int c = 4 * s + 2 * half + jj;
        const __m256i w = q6_K_piece<Q, __m256i, Ops256>(load256(g + q6_K_low_chunk(c + 16 * (Q & 1))),
                                                         load256(g + q6_K_high_chunk(c)));
        for (int t = 0; t < T; ++t) {
          const __m256i d = _mm256_maddubs_epi16(piece(b[t]->qs + 4 * (c + 16 * Q)), w);
          sum16[t] = jj ? _mm256_add_epi16(sum16[t], d) : d;
        }
      }
      for (int t = 0; t < T; ++t) isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(sum16[t], sc));
    }
  }

  template <int T>
  __attribute__((always_inline)) static void block(const uint8_t* g, const Act* const* b, const int32_t* const*,
                                                   __m256* acc) {
    __m256i isum[T];
    for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
    for (int s = 0; s < 4; ++s) {
      quarter<0, T>(g, s, b, isum);
      quarter<1, T>(g, s, b, isum);
      quarter<2, T>(g, s, b, isum);
      quarter<3, T>(g, s, b, isum);
    }
    for (int t = 0; t < T; ++t) acc[t] = q6_K_fold(g, isum[t], b[t]->d, acc[t]);
  }
};

}  // namespace clusterctl::kernels::detail::x86::avx2

namespace clusterctl::kernels::detail {

void fill_packed_avx2(KernelTable& t) {
  using namespace x86;
  t.packed[slot(GgmlType::Q4_0)] = {q4_0x8_dot<dot_acc_u8i8>, q4_0x8_chunked_dot<dot_acc_u8i8>,
                                    packed_tokens_dot<GroupByGroup<Q4_0TokensAvx2>>,
                                    packed_tokens_chunked_dot<GroupByGroup<Q4_0TokensAvx2>>};
  t.packed[slot(GgmlType::Q8_0)] = Rows8Kernels<avx2::Q8_0>::kernels();
  t.packed[slot(GgmlType::IQ4_NL)] = Rows8Kernels<avx2::Iq4Nl>::kernels();
  t.packed[slot(GgmlType::Q4_K)] = Rows8Kernels<avx2::K4<false>>::kernels();
  t.packed[slot(GgmlType::Q5_K)] = Rows8Kernels<avx2::K4<true>>::kernels();
  t.packed[slot(GgmlType::Q2_K)] = Rows8Kernels<Q2_K<false>>::kernels();
  t.packed[slot(GgmlType::Q3_K)] = Rows8Kernels<Q3_K<false>>::kernels();
  t.packed[slot(GgmlType::Q6_K)] = Rows8Kernels<avx2::Q6_K>::kernels();
  t.packed[slot(GgmlType::IQ4_XS)] = Rows8Kernels<Iq4Xs<false>>::kernels();
}

}  // namespace clusterctl::kernels::detail
