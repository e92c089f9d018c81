#pragma once
// Q4_0 and Q5_0 decoding, 8 rows per call, shared by the AVX2 and AVX-512 VNNI sources (which
// differ only in the unsigned x signed byte dot they pass in). One block per row per step costs
// ~17 instructions in a plain vec_dot, six of them for the two fp16 scales; here the 8 rows' block
// sums are reduced into one vector (lane = row) so their scales are converted, applied and
// accumulated 8 at a time, and sum(y) for the +8 (+16) offset is computed once per block for all
// rows. (Q5_0 is what a Q4_K_M file holds for tensors whose rows are not whole 256-blocks, such
// as DeepSeek-V2-Lite's 1408-wide expert down projections.)
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "worker/kernels/blocks.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/x86/avx2_helpers.h"

namespace clusterctl::kernels::detail::x86 {

// A block's quants as the unsigned bytes they are stored as, and what they are stored above zero.
struct Q4_0Bytes {
  using Block = block_q4_0;
  static constexpr GgmlType kType = GgmlType::Q4_0;
  static constexpr int kOffset = 8;
  static __m256i bytes(const Block* b) { return unpack_nibbles(b->qs); }
};
struct Q5_0Bytes {
  using Block = block_q5_0;
  static constexpr GgmlType kType = GgmlType::Q5_0;
  static constexpr int kOffset = 16;
  static __m256i bytes(const Block* b) {
    return _mm256_or_si256(unpack_nibbles(b->qs), _mm256_and_si256(spread_bits(b->qh), _mm256_set1_epi8(0x10)));
  }
};

// One block i of 8 rows: acc (lane = row) += the rows' block dots times their scales. (Forced
// inline: gcc otherwise calls it once per block from the chunked kernel, ~15 % slower.)
template <typename Q, __m256i (*DotU8I8)(__m256i, __m256i)>
__attribute__((always_inline)) inline __m256 q_0_rows8_block(const uint8_t* w, size_t w_stride, const block_q8_0* b,
                                                             int64_t i, __m256 acc) {
  constexpr int kRows = 8;
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
  __m256i s[kRows];
  alignas(16) uint16_t d[kRows];
  for (int r = 0; r < kRows; ++r) {
    const auto* blk = reinterpret_cast<const typename Q::Block*>(w + r * w_stride) + i;
    // The next 8 rows, same block: one core's hardware prefetcher alone leaves short rows
    // (2048 wide = 18 cache lines) waiting on DRAM.
    if (i % 2 == 0) _mm_prefetch(reinterpret_cast<const char*>(blk) + kRows * w_stride, _MM_HINT_T0);
    s[r] = DotU8I8(Q::bytes(blk), yv);
    d[r] = blk->d;
  }
  // Lane r of `sum` = the block dot of row r (nibbles as stored, 0..15).
  const __m256i t0 = _mm256_hadd_epi32(s[0], s[1]), t1 = _mm256_hadd_epi32(s[2], s[3]);
  const __m256i t2 = _mm256_hadd_epi32(s[4], s[5]), t3 = _mm256_hadd_epi32(s[6], s[7]);
  const __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);
  __m256i sum = _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
  // The quants are stored +8 (+16): take that times sum(y) off every row's dot.
  const int ysum = hsum_i32(DotU8I8(ones8, yv));
  sum = _mm256_sub_epi32(sum, _mm256_set1_epi32(Q::kOffset * ysum));
  const __m256 scale =
      _mm256_mul_ps(_mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(d))), _mm256_set1_ps(h2f(b[i].d)));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), scale, acc);
}

// DotU8I8(a, b): per 32-bit lane, the sum of 4 products of unsigned bytes a and signed bytes b.
template <typename Q, __m256i (*DotU8I8)(__m256i, __m256i)>
void q_0_rows8(int64_t n, const uint8_t* w, size_t w_stride, const void* x, float* y) {
  const auto* b = static_cast<const block_q8_0*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK8_0; ++i) acc = q_0_rows8_block<Q, DotU8I8>(w, w_stride, b, i, acc);
  _mm256_storeu_ps(y, acc);
}

// The same for matmul_row_parallel: each row's float sum restarts every `chunk` elements and is
// folded into a double, times `scale` in float first (lanes stay rows: two conversions and two
// adds per chunk).
template <typename Q, __m256i (*DotU8I8)(__m256i, __m256i)>
void q_0_rows8_chunked(int64_t n, int64_t chunk, const uint8_t* w, size_t w_stride, const void* x, double* y,
                       float scale) {
  const auto* b = static_cast<const block_q8_0*>(x);
  const int64_t nb = n / QK8_0, cb = chunk / QK8_0;
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  for (int64_t c = 0; c < nb; c += cb) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = c, end = std::min(nb, c + cb); i < end; ++i)
      acc = q_0_rows8_block<Q, DotU8I8>(w, w_stride, b, i, acc);
    acc = _mm256_mul_ps(acc, _mm256_set1_ps(scale));  // x * 1.0f is x: unweighted sums keep their bits
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(acc)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(acc, 1)));
  }
  _mm256_storeu_pd(y, lo);
  _mm256_storeu_pd(y + 4, hi);
}

// The table's RowsDotFn and ChunkedRowsDotFn for Q4_0 and Q5_0: the 8-row kernels above; fewer rows (which
// the contract allows and the matmul never passes) row by row through the table's vec_dot.
template <typename Q, __m256i (*DotU8I8)(__m256i, __m256i)>
void rows_dot_q_0(int64_t n, const uint8_t* w, size_t w_stride, int n_rows, const void* x, float* y) {
  if (n_rows != kDecodeRows) {
    const VecDotFn dot = active_table().vec_dot[slot(Q::kType)];
    for (int r = 0; r < n_rows; ++r) y[r] = dot(n, w + r * w_stride, x);
    return;
  }
  q_0_rows8<Q, DotU8I8>(n, w, w_stride, x, y);
}

template <typename Q, __m256i (*DotU8I8)(__m256i, __m256i)>
void chunked_rows_dot_q_0(int64_t n, int64_t chunk, const uint8_t* w, size_t w_stride, int n_rows, const void* x,
                          double* y, float scale) {
  if (n_rows != kDecodeRows) {
    const VecDotFn dot = active_table().vec_dot[slot(Q::kType)];
    const auto* b = static_cast<const block_q8_0*>(x);
    for (int r = 0; r < n_rows; ++r) {
      const auto* a = reinterpret_cast<const typename Q::Block*>(w + r * w_stride);
      double sum = 0;
      for (int64_t k = 0; k < n; k += chunk) sum += dot(std::min(chunk, n - k), a + k / QK8_0, b + k / QK8_0) * scale;
      y[r] = sum;
    }
    return;
  }
  q_0_rows8_chunked<Q, DotU8I8>(n, chunk, w, w_stride, x, y, scale);
}

}  // namespace clusterctl::kernels::detail::x86
