#pragma once
// NEON decode dots for Q2_K, Q3_K, IQ4_XS (against Q8_K) and IQ4_NL (against Q8_0): per 16
// elements one byte dot (dot_s8), each sub-block's integer sum times its scale as in the scalar
// reference (rows.cpp), so the integer sums and each block's float are the same. Included by
// rows_neon.cpp.
#include <arm_neon.h>

#include "worker/kernels/arm/neon_common.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/quant_ref.h"

namespace clusterctl::kernels::detail::neon_lowbit {

inline int dot16(int8x16_t a, const int8_t* q8) { return vaddvq_s32(dot_s8(vdupq_n_s32(0), a, vld1q_s8(q8))); }

inline float dot_q2_K(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q2_K*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  const uint8x16_t m3 = vdupq_n_u8(3);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int summs = 0;
    for (int j = 0; j < 16; ++j) summs += (a[i].scales[j] >> 4) * b[i].bsums[j];
    const int8_t* q8 = b[i].qs;
    int isum = 0, is = 0;
    for (int half = 0; half < 2; ++half) {
      const uint8x16_t qa = vld1q_u8(a[i].qs + 32 * half), qb = vld1q_u8(a[i].qs + 32 * half + 16);
      for (int s = 0; s < 4; ++s, q8 += 32, is += 2) {
        const int8x16_t sh = vdupq_n_s8(static_cast<int8_t>(-2 * s));
        const int8x16_t va = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(qa, sh), m3));
        const int8x16_t vb = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(qb, sh), m3));
        isum += (a[i].scales[is] & 0xf) * dot16(va, q8) + (a[i].scales[is + 1] & 0xf) * dot16(vb, q8 + 16);
      }
    }
    sum += b[i].d * (h2f(a[i].d) * static_cast<float>(isum) - h2f(a[i].dmin) * static_cast<float>(summs));
  }
  return sum;
}

inline float dot_q3_K(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q3_K*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  const uint8x16_t m3 = vdupq_n_u8(3), four = vdupq_n_u8(4);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8x16_t ha = vld1q_u8(a[i].hmask), hb = vld1q_u8(a[i].hmask + 16);
    const int8_t* q8 = b[i].qs;
    int isum = 0, is = 0;
    for (int half = 0; half < 2; ++half) {
      const uint8x16_t qa = vld1q_u8(a[i].qs + 32 * half), qb = vld1q_u8(a[i].qs + 32 * half + 16);
      for (int s = 0; s < 4; ++s, q8 += 32, is += 2) {
        const int8x16_t sh = vdupq_n_s8(static_cast<int8_t>(-2 * s));
        const uint8x16_t bit = vdupq_n_u8(static_cast<uint8_t>(1u << (4 * half + s)));
        // 4 where the high bit is clear: the value is low2 - 4.
        const uint8x16_t ma = vandq_u8(vceqq_u8(vandq_u8(ha, bit), vdupq_n_u8(0)), four);
        const uint8x16_t mb = vandq_u8(vceqq_u8(vandq_u8(hb, bit), vdupq_n_u8(0)), four);
        const int8x16_t va = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(vshlq_u8(qa, sh), m3)), vreinterpretq_s8_u8(ma));
        const int8x16_t vb = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(vshlq_u8(qb, sh), m3)), vreinterpretq_s8_u8(mb));
        isum += q3k_scale(is, a[i].scales) * dot16(va, q8) + q3k_scale(is + 1, a[i].scales) * dot16(vb, q8 + 16);
      }
    }
    sum += h2f(a[i].d) * b[i].d * static_cast<float>(isum);
  }
  return sum;
}

// The 32 levels of 16 IQ4 nibble bytes (low nibbles: elements 0..15, high: 16..31) times q8.
inline int iq4_dot32(int8x16_t table, const uint8_t* qs, const int8_t* q8) {
  const uint8x16_t q = vld1q_u8(qs);
  const int8x16_t lo = vqtbl1q_s8(table, vandq_u8(q, vdupq_n_u8(0x0f)));
  const int8x16_t hi = vqtbl1q_s8(table, vshrq_n_u8(q, 4));
  return vaddvq_s32(dot_s8(dot_s8(vdupq_n_s32(0), lo, vld1q_s8(q8)), hi, vld1q_s8(q8 + 16)));
}

inline float dot_iq4_nl(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_iq4_nl*>(w);
  const auto* b = static_cast<const block_q8_0*>(x);
  const int8x16_t table = vld1q_s8(kValuesIq4nl);
  float sum = 0;
  for (int64_t i = 0; i < n / QK4_NL; ++i)
    sum += static_cast<float>(iq4_dot32(table, a[i].qs, b[i].qs)) * h2f(a[i].d) * h2f(b[i].d);
  return sum;
}

inline float dot_iq4_xs(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_iq4_xs*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  const int8x16_t table = vld1q_s8(kValuesIq4nl);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int isum = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib)
      isum += iq4xs_scale(ib, a[i].scales_l, a[i].scales_h) * iq4_dot32(table, a[i].qs + 16 * ib, b[i].qs + 32 * ib);
    sum += h2f(a[i].d) * b[i].d * static_cast<float>(isum);
  }
  return sum;
}

}  // namespace clusterctl::kernels::detail::neon_lowbit
