#pragma once
// Building blocks the NEON sources share.
#include <arm_neon.h>

#include <cstdint>

#include "worker/kernels/half.h"
#include "worker/kernels/kernel_table.h"

namespace clusterctl::kernels::detail {

// acc + the 4 signed byte products of each 32-bit lane: vdotq_s32 when the compiler targets
// dotprod (-march=...+dotprod, Apple's default), a widening multiply otherwise.
inline int32x4_t dot_s8(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(acc, a, b);
#else
  const int16x8_t p0 = vmull_s8(vget_low_s8(a), vget_low_s8(b));
  const int16x8_t p1 = vmull_high_s8(a, b);
  return vaddq_s32(acc, vaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1)));
#endif
}

inline float h2f(uint16_t h) { return half_to_float(h); }

}  // namespace clusterctl::kernels::detail
