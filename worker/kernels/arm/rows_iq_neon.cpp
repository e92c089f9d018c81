// NEON decode dots of the 1-3-bit IQ formats against Q8_K: per 16 elements the grid entries of
// two groups (IQ2, IQ1) or four (IQ3) loaded as bytes, their signs applied to the activations
// (times +-1), and one byte dot (dot_s8: vdotq_s32 with dotprod); each sub-block's integer sum
// times its scale as in the scalar reference (rows_iq.cpp), so the integer sums and each block's
// float are the same.
#include <arm_neon.h>

#include <cstring>

#include "worker/kernels/arm/neon_common.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/iq_grids.h"
#include "worker/kernels/quant_ref.h"
#include "worker/kernels/rows_iq_blocks.h"

namespace clusterctl::kernels::detail {
namespace {

// Two 8-byte table entries as 16 bytes (first one low).
inline uint8x16_t pair64(uint64_t lo, uint64_t hi) { return vcombine_u8(vcreate_u8(lo), vcreate_u8(hi)); }
inline int8x16_t spair64(uint64_t lo, uint64_t hi) { return vcombine_s8(vcreate_s8(lo), vcreate_s8(hi)); }

// Four 4-byte IQ3 grid entries as 16 bytes.
inline uint8x16_t quad32(const uint32_t* g, int i0, int i1, int i2, int i3) {
  const uint32_t v[4] = {g[i0], g[i1], g[i2], g[i3]};
  return vreinterpretq_u8_u32(vld1q_u32(v));
}

// +-1 bytes of two explicit sign bytes (bit j set: element j negative).
inline int8x16_t signs16(const uint8_t* s2) {
  const uint8x16_t bits = vcombine_u8(vdup_n_u8(s2[0]), vdup_n_u8(s2[1]));
  const uint8x16_t sel = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  return vreinterpretq_s8_u8(vorrq_u8(vtstq_u8(bits, sel), vdupq_n_u8(1)));
}

// +-1 bytes of two 7-bit sign sets.
inline int8x16_t signs7x2(unsigned s0, unsigned s1) { return spair64(kIqSignBytes[s0], kIqSignBytes[s1]); }

// dot of 16 unsigned grid magnitudes (< 64) with 16 activations times +-1.
inline int32x4_t signed_dot16(int32x4_t acc, uint8x16_t grid, int8x16_t signs, const int8_t* q8) {
  return dot_s8(acc, vreinterpretq_s8_u8(grid), vmulq_s8(vld1q_s8(q8), signs));
}

float dot_iq2_xxs(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq2_xxs>(
      n, w, x, 0.125f, [](const block_iq2_xxs& a, const block_q8_K& b) __attribute__((always_inline)) {
        const int8_t* q8 = b.qs;
        int bsum = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib, q8 += 32) {
          uint32_t aux[2];
          std::memcpy(aux, a.qs + 4 * ib, sizeof aux);
          const uint64_t* g = kIq2xxsGrid.data();
          int32x4_t s = signed_dot16(vdupq_n_s32(0), pair64(g[aux[0] & 255], g[(aux[0] >> 8) & 255]),
                                     signs7x2(aux[1] & 127, (aux[1] >> 7) & 127), q8);
          s = signed_dot16(s, pair64(g[(aux[0] >> 16) & 255], g[aux[0] >> 24]),
                           signs7x2((aux[1] >> 14) & 127, (aux[1] >> 21) & 127), q8 + 16);
          bsum += vaddvq_s32(s) * static_cast<int>(2 * (aux[1] >> 28) + 1);
        }
        return static_cast<float>(bsum);
      });
}

float dot_iq2_xs(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq2_xs>(
      n, w, x, 0.125f, [](const block_iq2_xs& a, const block_q8_K& b) __attribute__((always_inline)) {
        const int8_t* q8 = b.qs;
        const uint16_t* q2 = a.qs;
        const uint64_t* g = kIq2xsGrid.data();
        int bsum = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib, q8 += 32, q2 += 4) {
          const int lo = vaddvq_s32(signed_dot16(vdupq_n_s32(0), pair64(g[q2[0] & 511], g[q2[1] & 511]),
                                                 signs7x2(q2[0] >> 9, q2[1] >> 9), q8));
          const int hi = vaddvq_s32(signed_dot16(vdupq_n_s32(0), pair64(g[q2[2] & 511], g[q2[3] & 511]),
                                                 signs7x2(q2[2] >> 9, q2[3] >> 9), q8 + 16));
          bsum += lo * (2 * (a.scales[ib] & 0xf) + 1) + hi * (2 * (a.scales[ib] >> 4) + 1);
        }
        return static_cast<float>(bsum);
      });
}

float dot_iq2_s(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq2_s>(
      n, w, x, 0.125f, [](const block_iq2_s& a, const block_q8_K& b) __attribute__((always_inline)) {
        const int8_t* q8 = b.qs;
        const uint8_t* qs = a.qs;
        const uint8_t* qh = a.qh;
        const uint8_t* signs = qs + QK_K / 8;
        const uint64_t* g = kIq2sGrid.data();
        int bsum = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib, q8 += 32) {
          const int lo = vaddvq_s32(signed_dot16(vdupq_n_s32(0),
                                                 pair64(g[iq2s_index(qs, qh, ib, 0)], g[iq2s_index(qs, qh, ib, 1)]),
                                                 signs16(signs + 4 * ib), q8));
          const int hi = vaddvq_s32(signed_dot16(vdupq_n_s32(0),
                                                 pair64(g[iq2s_index(qs, qh, ib, 2)], g[iq2s_index(qs, qh, ib, 3)]),
                                                 signs16(signs + 4 * ib + 2), q8 + 16));
          bsum += lo * (2 * (a.scales[ib] & 0xf) + 1) + hi * (2 * (a.scales[ib] >> 4) + 1);
        }
        return static_cast<float>(bsum);
      });
}

float dot_iq3_xxs(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq3_xxs>(
      n, w, x, 0.25f, [](const block_iq3_xxs& a, const block_q8_K& b) __attribute__((always_inline)) {
        const int8_t* q8 = b.qs;
        const uint8_t* q3 = a.qs;
        const uint32_t* g = kIq3xxsGrid.data();
        int bsum = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib, q8 += 32, q3 += 8) {
          uint32_t aux;
          std::memcpy(&aux, a.qs + QK_K / 4 + 4 * ib, sizeof aux);
          int32x4_t s = signed_dot16(vdupq_n_s32(0), quad32(g, q3[0], q3[1], q3[2], q3[3]),
                                     signs7x2(aux & 127, (aux >> 7) & 127), q8);
          s = signed_dot16(s, quad32(g, q3[4], q3[5], q3[6], q3[7]), signs7x2((aux >> 14) & 127, (aux >> 21) & 127),
                           q8 + 16);
          bsum += vaddvq_s32(s) * static_cast<int>(2 * (aux >> 28) + 1);
        }
        return static_cast<float>(bsum);
      });
}

float dot_iq3_s(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq3_s>(
      n, w, x, 1.0f, [](const block_iq3_s& a, const block_q8_K& b) __attribute__((always_inline)) {
        const int8_t* q8 = b.qs;
        const uint8_t* qs = a.qs;
        const uint8_t* qh = a.qh;
        const uint32_t* g = kIq3sGrid.data();
        int bsum = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib, q8 += 32) {
          auto idx = [&](int k) { return iq3s_index(qs, qh, ib, k); };
          int32x4_t s =
              signed_dot16(vdupq_n_s32(0), quad32(g, idx(0), idx(1), idx(2), idx(3)), signs16(a.signs + 4 * ib), q8);
          s = signed_dot16(s, quad32(g, idx(4), idx(5), idx(6), idx(7)), signs16(a.signs + 4 * ib + 2), q8 + 16);
          bsum += vaddvq_s32(s) * (2 * ((a.scales[ib / 2] >> (4 * (ib % 2))) & 0xf) + 1);
        }
        return static_cast<float>(bsum);
      });
}

// IQ1: the grid bytes are signed (-1, 0, 1) and multiply the activations directly.
float dot_iq1_s(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq1_s>(
      n, w, x, 1.0f, [](const block_iq1_s& a, const block_q8_K& b) __attribute__((always_inline)) {
        const int8_t* q8 = b.qs;
        const uint8_t* qs = a.qs;
        const uint16_t* qh = a.qh;
        const uint64_t* g = kIq1sGrid.data();
        int sumi = 0, sumi1 = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib, q8 += 32) {
          const int ls = 2 * ((qh[ib] >> 12) & 7) + 1;
          int32x4_t s =
              dot_s8(vdupq_n_s32(0), spair64(g[iq1s_index(qs, qh, ib, 0)], g[iq1s_index(qs, qh, ib, 1)]), vld1q_s8(q8));
          s = dot_s8(s, spair64(g[iq1s_index(qs, qh, ib, 2)], g[iq1s_index(qs, qh, ib, 3)]), vld1q_s8(q8 + 16));
          sumi += ls * vaddvq_s32(s);
          const int bsum = b.bsums[2 * ib] + b.bsums[2 * ib + 1];
          sumi1 += ls * (qh[ib] & 0x8000 ? -bsum : bsum);
        }
        return (static_cast<float>(sumi) + kIq1Delta * static_cast<float>(sumi1));
      });
}

float dot_iq1_m(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq1_m>(
      n, w, x, 1.0f, [](const block_iq1_m& a, const block_q8_K& b) __attribute__((always_inline)) {
        const int8_t* q8 = b.qs;
        const uint8_t* qs = a.qs;
        const uint8_t* qh = a.qh;
        const uint64_t* g = kIq1sGrid.data();
        int sumi1 = 0, sumi2 = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
          for (int half = 0; half < 2; ++half, q8 += 16) {
            const int l = 2 * half;
            const int8x16_t y = vld1q_s8(q8);
            const int grid = vaddvq_s32(
                dot_s8(vdupq_n_s32(0), spair64(g[iq1m_index(qs, qh, ib, l)], g[iq1m_index(qs, qh, ib, l + 1)]), y));
            // The delta's sign per 8 elements, as +-1 bytes.
            const int8x16_t delta = vcombine_s8(vdup_n_s8(iq1m_delta_negative(qh, ib, l) ? -1 : 1),
                                                vdup_n_s8(iq1m_delta_negative(qh, ib, l + 1) ? -1 : 1));
            const int dsum = vaddvq_s32(dot_s8(vdupq_n_s32(0), delta, y));
            const int ls = 2 * iq1m_subscale(a.scales, 2 * ib + half) + 1;
            sumi1 += ls * grid;
            sumi2 += ls * dsum;
          }
        }
        return (static_cast<float>(sumi1) + kIq1Delta * static_cast<float>(sumi2));
      });
}

}  // namespace

void fill_rows_iq_neon(KernelTable& t) {
  t.vec_dot[slot(GgmlType::IQ2_XXS)] = dot_iq2_xxs;
  t.vec_dot[slot(GgmlType::IQ2_XS)] = dot_iq2_xs;
  t.vec_dot[slot(GgmlType::IQ2_S)] = dot_iq2_s;
  t.vec_dot[slot(GgmlType::IQ3_XXS)] = dot_iq3_xxs;
  t.vec_dot[slot(GgmlType::IQ3_S)] = dot_iq3_s;
  t.vec_dot[slot(GgmlType::IQ1_S)] = dot_iq1_s;
  t.vec_dot[slot(GgmlType::IQ1_M)] = dot_iq1_m;
}

}  // namespace clusterctl::kernels::detail
