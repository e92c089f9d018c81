#pragma once
// The block loop the IQ decoding dots share: each block's dot with the Q8_K activations summed
// as the type's block math says, times d * d8, added block after block. The scalar reference
// (rows_iq.cpp) and NEON (arm/rows_iq_neon.cpp) add each block's float in turn (iq_dot); x86
// keeps 8 float lanes to the row's end (x86/rows_iq.h).
#include <cstdint>

#include "worker/kernels/blocks.h"
#include "worker/kernels/half.h"
#include "worker/kernels/quant_ref.h"

namespace clusterctl::kernels::detail {

// A block's fp16 scale d; IQ1_M keeps it in the top bits of its scale words.
template <typename Block>
inline fp16_t iq_block_d(const Block& a) {
  return a.d;
}
inline fp16_t iq_block_d(const block_iq1_m& a) { return iq1m_scale_bits(a.scales); }

// factor * the sum over blocks of d * d8 * block_sum(a, b) (a float: the block's integer sums
// with the type's constants), in float, block after block.
template <typename Block, typename BlockSum>
__attribute__((always_inline)) inline float iq_dot(int64_t n, const void* w, const void* x, float factor,
                                                   BlockSum&& block_sum) {
  const auto* a = static_cast<const Block*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  float sumf = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float block = block_sum(a[i], b[i]);
    sumf += half_to_float(iq_block_d(a[i])) * b[i].d * block;
  }
  return factor * sumf;
}

}  // namespace clusterctl::kernels::detail
