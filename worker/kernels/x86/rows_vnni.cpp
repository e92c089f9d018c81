// AVX-512 VNNI row kernels for decoding (Layout::Rows): the 8-row Q4_0 kernel and the K-quant
// dots with VNNI's fused byte and word dots. The other types keep the AVX2 row kernels, which
// measured as fast for one row and one token.
#include <immintrin.h>

#include <algorithm>

#include "worker/kernels/blocks.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/x86/rows_kquant.h"
#include "worker/kernels/x86/rows_q4_0.h"

namespace clusterctl::kernels::detail {
namespace {

inline __m256i dot_u8i8_vnni(__m256i a, __m256i b) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b); }
inline __m256i madd_add_vnni(__m256i acc, __m256i scale, __m256i prod) { return _mm256_dpwssd_epi32(acc, scale, prod); }

void rows_dot_q4_0(int64_t n, const uint8_t* w, size_t w_stride, int n_rows, const void* x, float* y) {
  if (n_rows != kDecodeRows) {
    for (int r = 0; r < n_rows; ++r) y[r] = active_table().vec_dot[slot(GgmlType::Q4_0)](n, w + r * w_stride, x);
    return;
  }
  x86::q4_0_rows8<dot_u8i8_vnni>(n, w, w_stride, x, y);
}

void chunked_rows_dot_q4_0(int64_t n, int64_t chunk, const uint8_t* w, size_t w_stride, int n_rows, const void* x,
                           double* y) {
  if (n_rows != kDecodeRows) {
    const VecDotFn dot = active_table().vec_dot[slot(GgmlType::Q4_0)];
    for (int r = 0; r < n_rows; ++r) {
      double sum = 0;
      for (int64_t k = 0; k < n; k += chunk)
        sum += dot(std::min(chunk, n - k), w + r * w_stride + k / QK4_0 * sizeof(block_q4_0),
                   static_cast<const block_q8_0*>(x) + k / QK8_0);
      y[r] = sum;
    }
    return;
  }
  x86::q4_0_rows8_chunked<dot_u8i8_vnni>(n, chunk, w, w_stride, x, y);
}

}  // namespace

void fill_rows_vnni(KernelTable& t) {
  t.rows_dot[slot(GgmlType::Q4_0)] = rows_dot_q4_0;
  t.chunked_rows_dot[slot(GgmlType::Q4_0)] = chunked_rows_dot_q4_0;
  x86::install_kquant_dots<madd_add_vnni>(t);
}

}  // namespace clusterctl::kernels::detail
