// AVX-512 VNNI row kernels for decoding (Layout::Rows): the 8-row Q4_0 kernel and the K-quant
// dots with VNNI's fused byte and word dots. The other types keep the AVX2 row kernels, which
// measured as fast for one row and one token.
#include <immintrin.h>

#include "worker/kernels/blocks.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/x86/rows_iq.h"
#include "worker/kernels/x86/rows_kquant.h"
#include "worker/kernels/x86/rows_q_0.h"

namespace clusterctl::kernels::detail {
namespace {

inline __m256i dot_u8i8_vnni(__m256i a, __m256i b) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b); }
inline __m256i madd_add_vnni(__m256i acc, __m256i scale, __m256i prod) { return _mm256_dpwssd_epi32(acc, scale, prod); }

}  // namespace

void fill_rows_vnni(KernelTable& t) {
  t.rows_dot[slot(GgmlType::Q4_0)] = x86::rows_dot_q_0<x86::Q4_0Bytes, dot_u8i8_vnni>;
  t.chunked_rows_dot[slot(GgmlType::Q4_0)] = x86::chunked_rows_dot_q_0<x86::Q4_0Bytes, dot_u8i8_vnni>;
  t.rows_dot[slot(GgmlType::Q5_0)] = x86::rows_dot_q_0<x86::Q5_0Bytes, dot_u8i8_vnni>;
  t.chunked_rows_dot[slot(GgmlType::Q5_0)] = x86::chunked_rows_dot_q_0<x86::Q5_0Bytes, dot_u8i8_vnni>;
  x86::install_kquant_dots<madd_add_vnni>(t);
  x86::install_iq_dots<madd_add_vnni>(t);
}

}  // namespace clusterctl::kernels::detail
