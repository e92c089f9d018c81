#pragma once
// The block loops every x86 Layout::Packed8 kernel shares (AVX2 instructions only, so the AVX2
// and AVX-512 sources both use them): one token against one group of 8 rows, and the sums of T
// tokens' 8 rows for the prompt kernels that run one group at a time. Plain sums are stored;
// chunked sums (matmul_row_parallel) restart each row's float sum every chunk and fold it into a
// double, so a split of the columns between ranks changes nothing. Rows8Kernels puts them
// together around a type's block math, so a type's file holds only that.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "worker/kernels/kernel_table.h"
#include "worker/kernels/packed_tokens.h"

namespace clusterctl::kernels::detail::x86 {

// A decode reads each group once, from DRAM, in one sequential run: the lines kPrefetchAheadBytes
// ahead of the block in hand are asked for while it is computed. One core's hardware prefetchers
// alone left the K-quant, IQ4_XS and Q8_0 kernels 10-25 % short of the plain read rate
// (kernels_bench --tokens 1, 2 threads, 2048 columns).
constexpr size_t kPrefetchAheadBytes = 2048;

template <size_t BlockBytes>
__attribute__((always_inline)) inline void prefetch_ahead(const uint8_t* block) {
  const char* p = reinterpret_cast<const char*>(block) + kPrefetchAheadBytes;
  for (size_t line = 0; line < BlockBytes; line += 64) _mm_prefetch(p + line, _MM_HINT_T0);
}

// acc = block(i, acc) for the nb blocks of `group` (BlockBytes each), stored.
template <size_t BlockBytes, typename Block>
inline void rows8_dot(const uint8_t* group, int64_t nb, Block&& block, float* y) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    prefetch_ahead<BlockBytes>(group + i * BlockBytes);
    acc = block(i, acc);
  }
  _mm256_storeu_ps(y, acc);
}

// The same with each row's float sum restarted every cb blocks and folded into a double, times
// `scale` first.
template <size_t BlockBytes, typename Block>
inline void rows8_chunked_dot(const uint8_t* group, int64_t nb, int64_t cb, Block&& block, double* y, float scale) {
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  const __m256 s = _mm256_set1_ps(scale);
  for (int64_t c = 0; c < nb; c += cb) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = c, end = std::min(nb, c + cb); i < end; ++i) {
      prefetch_ahead<BlockBytes>(group + i * BlockBytes);
      acc = block(i, acc);
    }
    acc = _mm256_mul_ps(acc, s);
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(acc)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(acc, 1)));
  }
  _mm256_storeu_pd(y, lo);
  _mm256_storeu_pd(y + 4, hi);
}

// T tokens' sums of one group's 8 rows (lane = row), token t's at y + t * y_stride; chunked
// sums times scale[t] (when given) before they are folded.
template <int T, bool Chunked>
struct Rows8Sums {
  __m256 acc[T];
  __m256d lo_rows[T], hi_rows[T];
  const float* scale;
  explicit Rows8Sums(const float* s = nullptr) : scale(s) {
    for (int t = 0; t < T; ++t) lo_rows[t] = hi_rows[t] = _mm256_setzero_pd();
  }
  // A verify pass's 2-4 tokens read the group from DRAM as a decode's one does.
  template <size_t BlockBytes>
  __attribute__((always_inline)) static void prefetch(const uint8_t* block) {
    prefetch_ahead<BlockBytes>(block);
  }
  void start_chunk() {
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  }
  void end_chunk(float* yf, size_t y_stride) {
    for (int t = 0; t < T; ++t) {
      if constexpr (Chunked) {
        if (scale) acc[t] = _mm256_mul_ps(acc[t], _mm256_set1_ps(scale[t]));
        lo_rows[t] = _mm256_add_pd(lo_rows[t], _mm256_cvtps_pd(_mm256_castps256_ps128(acc[t])));
        hi_rows[t] = _mm256_add_pd(hi_rows[t], _mm256_cvtps_pd(_mm256_extractf128_ps(acc[t], 1)));
      } else {
        _mm256_storeu_ps(yf + t * y_stride, acc[t]);
      }
    }
  }
  void finish(double* yd, size_t y_stride) {
    if constexpr (Chunked)
      for (int t = 0; t < T; ++t) {
        _mm256_storeu_pd(yd + t * y_stride, lo_rows[t]);
        _mm256_storeu_pd(yd + t * y_stride + 4, hi_rows[t]);
      }
  }
};

// A type's kernels for one group of 8 rows at a time from its block math (packed_tokens.h's
// run_one_group describes the type; its acc is __m256, lane = row). Decoding runs
//   static __m256 decode(const uint8_t* g, const Act& b, const int32_t* xoff, __m256 acc)
// where the type has its own code for one token (acc plus the group's block g against the
// token's block b), otherwise block<1>.
template <typename Type>
struct Rows8Kernels {
  using Act = typename Type::Act;

  __attribute__((always_inline)) static __m256 decode(const uint8_t* g, const Act& b, const int32_t* xoff, __m256 acc) {
    if constexpr (requires { Type::decode(g, b, xoff, acc); }) {
      return Type::decode(g, b, xoff, acc);
    } else {
      const Act* one[1] = {&b};
      const int32_t* one_xoff[1] = {xoff};
      Type::template block<1>(g, one, one_xoff, &acc);
      return acc;
    }
  }

  static void dot(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
    const auto* b = static_cast<const Act*>(x);
    rows8_dot<Type::kBlockBytes>(
        group, n / Type::kCols,
        [&](int64_t i, __m256 acc) { return decode(group + i * Type::kBlockBytes, b[i], xoff + i * Type::kXoff, acc); },
        y);
  }

  static void chunked_dot(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff, double* y,
                          float scale) {
    const auto* b = static_cast<const Act*>(x);
    rows8_chunked_dot<Type::kBlockBytes>(
        group, n / Type::kCols, chunk / Type::kCols,
        [&](int64_t i, __m256 acc) { return decode(group + i * Type::kBlockBytes, b[i], xoff + i * Type::kXoff, acc); },
        y, scale);
  }

  // The one-group prompt kernel (packed_tokens.h); GroupByGroup runs it for both groups.
  template <int T, bool Chunked, typename... Args>
  static void run(Args... args) {
    run_one_group<Type, Rows8Sums, T, Chunked>(args...);
  }

  // The kernel table's entry.
  static PackedKernels kernels() {
    return {dot, chunked_dot, packed_tokens_dot<GroupByGroup<Rows8Kernels>>,
            packed_tokens_chunked_dot<GroupByGroup<Rows8Kernels>>};
  }
};

}  // namespace clusterctl::kernels::detail::x86
