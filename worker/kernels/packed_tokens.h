#pragma once
// The frame every ISA's Packed8 prompt kernels share (PackedTokensDotFn and its chunked form):
// the dispatch on the token count, and the two groups one after the other for ISAs whose
// registers hold one group's weights at a time. A kernel is a struct with
//   template <int T> static void run(int64_t n, int64_t chunk, <groups>, const uint8_t* x,
//       size_t x_stride, const int32_t* xoff, size_t xoff_stride, float* yf, double* yd, size_t y_stride)
// for T tokens, where chunk 0 means plain sums into yf and chunk > 0 chunked sums into yd.
#include <cstdint>

#include "worker/kernels/kernel_table.h"

namespace clusterctl::kernels::detail {

static_assert(kPackTokens == 4, "run_for_tokens dispatches 1 to 4 tokens");

template <typename Kernel, typename... Args>
void run_for_tokens(int n_tokens, Args... args) {
  switch (n_tokens) {
    case 1: return Kernel::template run<1>(args...);
    case 2: return Kernel::template run<2>(args...);
    case 3: return Kernel::template run<3>(args...);
    default: return Kernel::template run<4>(args...);
  }
}

// A two-group kernel (<groups> = g0, g1) from a one-group kernel (<groups> = group).
template <typename OneGroup>
struct GroupByGroup {
  template <int T>
  static void run(int64_t n, int64_t chunk, const uint8_t* g0, const uint8_t* g1, const uint8_t* x, size_t x_stride,
                  const int32_t* xoff, size_t xoff_stride, float* yf, double* yd, size_t y_stride) {
    OneGroup::template run<T>(n, chunk, g0, x, x_stride, xoff, xoff_stride, yf, yd, y_stride);
    OneGroup::template run<T>(n, chunk, g1, x, x_stride, xoff, xoff_stride, yf ? yf + kPackRows : nullptr,
                              yd ? yd + kPackRows : nullptr, y_stride);
  }
};

// The table's entries for a two-group kernel.
template <typename Kernel>
void packed_tokens_dot(int64_t n, const uint8_t* g0, const uint8_t* g1, const uint8_t* x, size_t x_stride,
                       const int32_t* xoff, size_t xoff_stride, int n_tokens, float* y, size_t y_stride) {
  run_for_tokens<Kernel>(n_tokens, n, int64_t{0}, g0, g1, x, x_stride, xoff, xoff_stride, y,
                         static_cast<double*>(nullptr), y_stride);
}

template <typename Kernel>
void packed_tokens_chunked_dot(int64_t n, int64_t chunk, const uint8_t* g0, const uint8_t* g1, const uint8_t* x,
                               size_t x_stride, const int32_t* xoff, size_t xoff_stride, int n_tokens, double* y,
                               size_t y_stride) {
  run_for_tokens<Kernel>(n_tokens, n, chunk, g0, g1, x, x_stride, xoff, xoff_stride, static_cast<float*>(nullptr), y,
                         y_stride);
}

}  // namespace clusterctl::kernels::detail
