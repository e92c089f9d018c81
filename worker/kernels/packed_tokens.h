#pragma once
// The frame every ISA's Packed8 prompt kernels share (PackedTokensDotFn and its chunked form):
// the dispatch on the token count, and the two groups one after the other for ISAs whose
// registers hold one group's weights at a time. A kernel is a struct with
//   template <int T, bool Chunked> static void run(int64_t n, int64_t chunk, <groups>,
//       const uint8_t* x, size_t x_stride, const int32_t* xoff, size_t xoff_stride, float* yf,
//       double* yd, size_t y_stride, const float* scale)
// for T tokens: plain sums into yf, or (Chunked) sums in chunks of `chunk` columns into yd, each
// chunk's times scale[t] when scale is given. run_one_group is that `run` for the ISAs' types
// that hold only their block math.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "worker/kernels/kernel_table.h"

namespace clusterctl::kernels::detail {

static_assert(kPackTokens == 4, "run_for_tokens dispatches 1 to 4 tokens");

template <typename Kernel, bool Chunked, typename... Args>
void run_for_tokens(int n_tokens, Args... args) {
  switch (n_tokens) {
    case 1:
      return Kernel::template run<1, Chunked>(args...);
    case 2:
      return Kernel::template run<2, Chunked>(args...);
    case 3:
      return Kernel::template run<3, Chunked>(args...);
    default:
      return Kernel::template run<4, Chunked>(args...);
  }
}

// A two-group kernel (<groups> = g0, g1) from a one-group kernel (<groups> = group).
template <typename OneGroup>
struct GroupByGroup {
  template <int T, bool Chunked>
  static void run(int64_t n, int64_t chunk, const uint8_t* g0, const uint8_t* g1, const uint8_t* x, size_t x_stride,
                  const int32_t* xoff, size_t xoff_stride, float* yf, double* yd, size_t y_stride, const float* scale) {
    OneGroup::template run<T, Chunked>(n, chunk, g0, x, x_stride, xoff, xoff_stride, yf, yd, y_stride, scale);
    OneGroup::template run<T, Chunked>(n, chunk, g1, x, x_stride, xoff, xoff_stride, Chunked ? nullptr : yf + kPackRows,
                                       Chunked ? yd + kPackRows : nullptr, y_stride, scale);
  }
};

// A one-group kernel's `run` from a type's block math. Sums<T, Chunked> is the ISA's T tokens'
// sums of one group's rows (acc[t], start_chunk, end_chunk, finish; and prefetch<BlockBytes>(block)
// where the ISA asks for a group's lines ahead of its block in hand); Type has Act (the token's
// block type), kCols (elements per block), kBlockBytes (a packed group's bytes per block), kXoff
// (xoff int32s per block) and
//   template <int T> static void block(const uint8_t* g, const Act* const* b,
//       const int32_t* const* xoff, <acc type>* acc): acc[t] plus the group's block g against
//     token t's block b[t] (xoff[t] its xoff), the group's weights unpacked once for all T.
template <typename Type, template <int, bool> class Sums, int T, bool Chunked>
void run_one_group(int64_t n, int64_t chunk, const uint8_t* group, const uint8_t* x, size_t x_stride,
                   const int32_t* xoff, size_t xoff_stride, float* yf, double* yd, size_t y_stride,
                   const float* scale) {
  using Act = typename Type::Act;
  const int64_t nb = n / Type::kCols, cb = Chunked ? chunk / Type::kCols : nb;
  Sums<T, Chunked> sums(scale);
  for (int64_t c = 0; c < nb; c += cb) {
    sums.start_chunk();
    for (int64_t i = c, end = std::min(nb, c + cb); i < end; ++i) {
      if constexpr (requires { Sums<T, Chunked>::template prefetch<Type::kBlockBytes>(group); })
        Sums<T, Chunked>::template prefetch<Type::kBlockBytes>(group + i * Type::kBlockBytes);
      const Act* b[T];
      const int32_t* off[T];
      for (int t = 0; t < T; ++t) {
        b[t] = reinterpret_cast<const Act*>(x + t * x_stride) + i;
        off[t] = xoff + t * xoff_stride + i * Type::kXoff;
      }
      Type::template block<T>(group + i * Type::kBlockBytes, b, off, sums.acc);
    }
    sums.end_chunk(yf, y_stride);
  }
  sums.finish(yd, y_stride);
}

// The table's entries for a two-group kernel.
template <typename Kernel>
void packed_tokens_dot(int64_t n, const uint8_t* g0, const uint8_t* g1, const uint8_t* x, size_t x_stride,
                       const int32_t* xoff, size_t xoff_stride, int n_tokens, float* y, size_t y_stride) {
  run_for_tokens<Kernel, false>(n_tokens, n, int64_t{0}, g0, g1, x, x_stride, xoff, xoff_stride, y,
                                static_cast<double*>(nullptr), y_stride, static_cast<const float*>(nullptr));
}

template <typename Kernel>
void packed_tokens_chunked_dot(int64_t n, int64_t chunk, const uint8_t* g0, const uint8_t* g1, const uint8_t* x,
                               size_t x_stride, const int32_t* xoff, size_t xoff_stride, int n_tokens, double* y,
                               size_t y_stride, const float* scale) {
  run_for_tokens<Kernel, true>(n_tokens, n, chunk, g0, g1, x, x_stride, xoff, xoff_stride, static_cast<float*>(nullptr),
                               y, y_stride, scale);
}

}  // namespace clusterctl::kernels::detail
