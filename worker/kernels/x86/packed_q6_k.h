#pragma once
// Q6_K's packed weights (packed.h) rebuilt from their nibble and 2-bit planes:
// the one unpacking every x86 Q6_K kernel uses (AVX2 instructions, or AVX-512 through Ops512).
#include <immintrin.h>

#include <cstdint>

#include "worker/kernels/x86/byte_ops.h"

namespace clusterctl::kernels::detail::x86 {

// Piece c + 16 * Quarter of every row from its low-nibble chunk (c for even quarters, c + 16 for
// odd ones) and high-bit chunk h (c): (low nibble | 2 high bits << 4) - 32, signed. V is
// __m256i or __m512i, Ops the matching operations.
template <int Quarter, typename V, typename Ops>
inline V q6_K_piece(V low, V h) {
  const V m4 = Ops::set1(0x0f), m32 = Ops::set1(32);
  if constexpr (Quarter == 0)
    return Ops::sub(Ops::or_(Ops::and_(low, m4), Ops::slli4(Ops::and_(h, Ops::set1(0x03)))), m32);
  if constexpr (Quarter == 1)
    return Ops::sub(Ops::or_(Ops::and_(low, m4), Ops::slli2(Ops::and_(h, Ops::set1(0x0c)))), m32);
  if constexpr (Quarter == 2)
    return Ops::sub(Ops::or_(Ops::and_(Ops::srli4(low), m4), Ops::and_(h, Ops::set1(0x30))), m32);
  return Ops::sub(Ops::or_(Ops::and_(Ops::srli4(low), m4), Ops::srli2(Ops::and_(h, Ops::set1(char(0xc0))))), m32);
}

// The four pieces c, c + 16, c + 32, c + 48 from low-nibble chunks a0 (c), a1 (c + 16) and
// high-bit chunk h (c).
template <typename V, typename Ops>
inline void q6_K_pieces(V a0, V a1, V h, V w[4]) {
  w[0] = q6_K_piece<0, V, Ops>(a0, h);
  w[1] = q6_K_piece<1, V, Ops>(a1, h);
  w[2] = q6_K_piece<2, V, Ops>(a0, h);
  w[3] = q6_K_piece<3, V, Ops>(a1, h);
}

inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

}  // namespace clusterctl::kernels::detail::x86
