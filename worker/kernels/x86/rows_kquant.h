#pragma once
// K-quant (Q4_K, Q5_K, Q6_K) decode dots against Q8_K, shared by the AVX2 and AVX-512 VNNI
// sources. They differ only in how a block's int16 products are scaled and accumulated
// (Madd): AVX2 multiplies and adds (madd + add), VNNI fuses both (dpwssd). The integers are
// the same either way, so both give the same floats, in ggml's order.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "worker/kernels/blocks.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/x86/avx2_helpers.h"

namespace clusterctl::kernels::detail::x86 {

// acc + the int16 pairs of `prod` times the int16 `scale`, summed per 32-bit lane.
using MaddAcc = __m256i (*)(__m256i acc, __m256i scale, __m256i prod);
inline __m256i madd_add(__m256i acc, __m256i scale, __m256i prod) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(scale, prod));
}

// Q4_K and Q5_K share the scale/min layout; Fifth adds the Q5_K high bits to the nibbles.
// Block i of a Q4_K/Q5_K row against Q8_K: acc += d * (scaled integer sums), acc_m += the mins' part.
template <MaddAcc Madd, bool Fifth, typename Block>
__attribute__((always_inline)) inline void k4_block(const Block* a, const block_q8_K* b, int64_t i, __m256& acc,
                                                    __m128& acc_m) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  {
    const float d = b[i].d * h2f(a[i].d);
    const float dmin = -b[i].d * h2f(a[i].dmin);
    const __m256i mins_and_scales = _mm256_cvtepu8_epi16(k4_scales_mins(a[i].scales));
    const __m256i q8sums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].bsums));
    const __m128i q8s = _mm_hadd_epi16(_mm256_castsi256_si128(q8sums), _mm256_extracti128_si256(q8sums, 1));
    const __m128i prod = _mm_madd_epi16(_mm256_extracti128_si256(mins_and_scales, 1), q8s);
    acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m);
    const __m128i sc128 = _mm256_castsi256_si128(mins_and_scales);
    const __m256i scales = _mm256_set_m128i(sc128, sc128);

    const uint8_t* q4 = a[i].qs;
    const int8_t* q8 = b[i].qs;
    __m256i hbits = _mm256_setzero_si256();
    if constexpr (Fifth) hbits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qh));
    __m256i sumi = _mm256_setzero_si256(), sumi_h = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j, q4 += 32, q8 += 64) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q4));
      __m256i lo = _mm256_and_si256(bits, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
      if constexpr (Fifth) {
        const __m256i one = _mm256_set1_epi8(1);
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j), one), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j + 1), one), 4));
      }
      const __m256i q8l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8));
      const __m256i q8h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32));
      // Two chains: a fused multiply-add has the latency of both.
      sumi = Madd(sumi, broadcast_scale(scales, 2 * j), _mm256_maddubs_epi16(lo, q8l));
      sumi_h = Madd(sumi_h, broadcast_scale(scales, 2 * j + 1), _mm256_maddubs_epi16(hi, q8h));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(sumi, sumi_h)), acc);
  }
}

// The float sum of blocks [i0, i1) of one Q4_K/Q5_K row, in ggml's order.
template <MaddAcc Madd, bool Fifth, typename Block>
float k4_blocks(const void* w, const block_q8_K* b, int64_t i0, int64_t i1) {
  const auto* a = static_cast<const Block*>(w);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_m = _mm_setzero_ps();
  for (int64_t i = i0; i < i1; ++i) k4_block<Madd, Fifth>(a, b, i, acc, acc_m);
  return hsum(acc) + hsum(acc_m);
}

template <MaddAcc Madd>
__attribute__((always_inline)) inline __m256 q6_K_block(const block_q6_K* a, const block_q8_K* b, int64_t i,
                                                        __m256 acc) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m2 = _mm256_set1_epi8(0x03);
  {
    const float d = b[i].d * h2f(a[i].d);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].scales)));
    const __m256i q8sums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].bsums));
    // The weights are stored +32; maddubs needs them unsigned, so take 32*sum(sc*bsum) off after.
    __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(q8sums, sc16), 5));
    const uint8_t* ql = a[i].ql;
    const uint8_t* qh = a[i].qh;
    const int8_t* q8 = b[i].qs;
    const int8_t* sc = a[i].scales;
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, q8 += 128, sc += 8) {
      // This half's 8 scales as int16 in both 128-bit lanes; pair k takes scale 2k in the low
      // lane and 2k+1 in the high one (a shuffle each, not scalar loads and inserts).
      const __m256i sc8 =
          _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc))));
      const __m256i bits1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i bits2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i bitsh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(bitsh, m2), 4);
      const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bitsh, 2), m2), 4);
      const __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bitsh, 4), m2), 4);
      const __m256i h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bitsh, 6), m2), 4);
      const __m256i q0 = _mm256_or_si256(_mm256_and_si256(bits1, m4), h0);
      const __m256i q1 = _mm256_or_si256(_mm256_and_si256(bits2, m4), h1);
      const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits1, 4), m4), h2);
      const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits2, 4), m4), h3);
      const __m256i qs[4] = {q0, q1, q2, q3};
      for (int k = 0; k < 4; ++k) {
        const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32 * k));
        const __m256i pick = _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(((4 * k + 3) << 8) | (4 * k + 2))),
                                              _mm_set1_epi16(static_cast<short>(((4 * k + 1) << 8) | (4 * k))));
        sumi = Madd(sumi, _mm256_shuffle_epi8(sc8, pick), _mm256_maddubs_epi16(qs[k], y));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return acc;
}

// The same for Q6_K.
template <MaddAcc Madd>
float q6_K_blocks(const void* w, const block_q8_K* b, int64_t i0, int64_t i1) {
  const auto* a = static_cast<const block_q6_K*>(w);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = i0; i < i1; ++i) acc = q6_K_block<Madd>(a, b, i, acc);
  return hsum(acc);
}

using BlocksSum = float (*)(const void* row, const block_q8_K* x, int64_t i0, int64_t i1);

template <BlocksSum Blocks>
float dot_kquant(int64_t n, const void* w, const void* x) {
  return Blocks(w, static_cast<const block_q8_K*>(x), 0, n / QK_K);
}

// matmul_row_parallel's decode: the float sums restart every chunk and fold into double.
template <BlocksSum Blocks>
void chunked_rows_kquant(int64_t n, int64_t chunk, const uint8_t* w, size_t w_stride, int n_rows, const void* x,
                         double* y, float scale) {
  const auto* b = static_cast<const block_q8_K*>(x);
  const int64_t nb = n / QK_K, cb = chunk / QK_K;
  for (int r = 0; r < n_rows; ++r) {
    double sum = 0;
    for (int64_t c = 0; c < nb; c += cb)
      sum += static_cast<double>(Blocks(w + r * w_stride, b, c, std::min(nb, c + cb)) * scale);
    y[r] = sum;
  }
}

// The K-quant decode entries of a kernel table, for one way of scaling the products.
template <MaddAcc Madd>
void install_kquant_dots(KernelTable& t) {
  t.vec_dot[slot(GgmlType::Q4_K)] = dot_kquant<k4_blocks<Madd, false, block_q4_K>>;
  t.vec_dot[slot(GgmlType::Q5_K)] = dot_kquant<k4_blocks<Madd, true, block_q5_K>>;
  t.vec_dot[slot(GgmlType::Q6_K)] = dot_kquant<q6_K_blocks<Madd>>;
  t.chunked_rows_dot[slot(GgmlType::Q4_K)] = chunked_rows_kquant<k4_blocks<Madd, false, block_q4_K>>;
  t.chunked_rows_dot[slot(GgmlType::Q5_K)] = chunked_rows_kquant<k4_blocks<Madd, true, block_q5_K>>;
  t.chunked_rows_dot[slot(GgmlType::Q6_K)] = chunked_rows_kquant<q6_K_blocks<Madd>>;
}

}  // namespace clusterctl::kernels::detail::x86
