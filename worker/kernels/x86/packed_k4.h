#pragma once
// Unpacking a Layout::Packed8 Q4_K / Q5_K chunk (packed.h), shared by the AVX2 and AVX-512
// kernels.
#include <immintrin.h>

#include <cstddef>

#include "worker/kernels/packed.h"
#include "worker/kernels/x86/byte_ops.h"

namespace clusterctl::kernels::detail::x86 {

template <bool Fifth>
constexpr size_t k4_block_bytes = Fifth ? kPackedQ5_KBlockBytes : kPackedQ4_KBlockBytes;

// Nibble chunk (p, j)'s low and high elements of 8 or 16 rows (V, Ops: 256 or 512 bits), with
// their fifth bits for Q5_K; `load` reads 32 bytes of a group block (joined for two groups).
// `bits` carries the fifth-bit chunk from j to j + 1 (chunks j = 0..3 share one, then 4..7),
// shifted right 2 each time so the chunk's bits are always bits 0 (low) and 1 (high).
template <bool Fifth, typename V, typename Ops, typename Load>
__attribute__((always_inline)) inline void k4_chunk(Load&& load, int p, int j, V& bits, V& lo, V& hi) {
  const V q = load(k4_quant_chunk<Fifth>(p, j)), m4 = Ops::set1(0x0f);
  lo = Ops::and_(q, m4);
  hi = Ops::and_(Ops::srli4(q), m4);
  if constexpr (Fifth) {
    bits = j % 4 == 0 ? load(q5_K_fifth_chunk(p, j / 4)) : Ops::template shr<2>(bits);
    const V bit4 = Ops::set1(0x10);
    lo = Ops::or_(lo, Ops::and_(Ops::template shl<4>(bits), bit4));
    hi = Ops::or_(hi, Ops::and_(Ops::template shl<3>(bits), bit4));
  }
}

}  // namespace clusterctl::kernels::detail::x86
