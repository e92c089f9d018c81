// Scalar decoding dots of the 1-3-bit IQ formats against Q8_K activations: the reference the
// SIMD kernels are tested against. Integer sums and float steps are ggml's
// ggml_vec_dot_iq*_q8_K_generic's: per 32 elements an integer dot of grid magnitudes (with their
// signs) and activations, times the integer sub-block scale 2s + 1, summed per block; the
// block's float is d * d8 * sum (times the format's constant).
#include <cstring>

#include "worker/kernels/blocks.h"
#include "worker/kernels/half.h"
#include "worker/kernels/iq_grids.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/quant_ref.h"
#include "worker/kernels/rows_iq_blocks.h"

namespace clusterctl::kernels::detail {
namespace {

inline int grid_byte(uint64_t entry, int j) { return static_cast<uint8_t>(entry >> (8 * j)); }
inline int grid_sbyte(uint64_t entry, int j) { return static_cast<int8_t>(entry >> (8 * j)); }

// Dot of 8 signed grid magnitudes with 8 activations.
inline int signed_dot8(uint64_t entry, uint8_t signs, const int8_t* q8) {
  int s = 0;
  for (int j = 0; j < 8; ++j) s += grid_byte(entry, j) * q8[j] * ((signs >> j) & 1 ? -1 : 1);
  return s;
}

// Two IQ3 entries of 4 (the 8 elements of one sign byte).
inline uint64_t iq3_pair(uint32_t e1, uint32_t e2) { return e1 | (static_cast<uint64_t>(e2) << 32); }

float dot_iq2_xxs(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq2_xxs>(
      n, w, x, 0.125f, [](const block_iq2_xxs& a, const block_q8_K& b) __attribute__((always_inline)) {
        const int8_t* q8 = b.qs;
        int bsum = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
          uint32_t aux[2];
          std::memcpy(aux, a.qs + 4 * ib, sizeof aux);
          int sumi = 0;
          for (int l = 0; l < 4; ++l, q8 += 8)
            sumi += signed_dot8(kIq2xxsGrid[(aux[0] >> (8 * l)) & 255], iq_signs_of((aux[1] >> (7 * l)) & 127), q8);
          bsum += sumi * static_cast<int>(2 * (aux[1] >> 28) + 1);
        }
        return static_cast<float>(bsum);
      });
}

float dot_iq2_xs(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq2_xs>(
      n, w, x, 0.125f, [](const block_iq2_xs& a, const block_q8_K& b) __attribute__((always_inline)) {
        const int8_t* q8 = b.qs;
        int bsum = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
          int sumi[2] = {};
          for (int l = 0; l < 4; ++l, q8 += 8) {
            const uint16_t q = a.qs[4 * ib + l];
            sumi[l / 2] += signed_dot8(kIq2xsGrid[q & 511], iq_signs_of(q >> 9), q8);
          }
          bsum += sumi[0] * (2 * (a.scales[ib] & 0xf) + 1) + sumi[1] * (2 * (a.scales[ib] >> 4) + 1);
        }
        return static_cast<float>(bsum);
      });
}

float dot_iq2_s(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq2_s>(
      n, w, x, 0.125f, [](const block_iq2_s& a, const block_q8_K& b) __attribute__((always_inline)) {
        const int8_t* q8 = b.qs;
        const uint8_t* signs = a.qs + QK_K / 8;
        int bsum = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
          int sumi[2] = {};
          for (int l = 0; l < 4; ++l, q8 += 8)
            sumi[l / 2] += signed_dot8(kIq2sGrid[iq2s_index(a.qs, a.qh, ib, l)], signs[4 * ib + l], q8);
          bsum += sumi[0] * (2 * (a.scales[ib] & 0xf) + 1) + sumi[1] * (2 * (a.scales[ib] >> 4) + 1);
        }
        return static_cast<float>(bsum);
      });
}

float dot_iq3_xxs(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq3_xxs>(
      n, w, x, 0.25f, [](const block_iq3_xxs& a, const block_q8_K& b) __attribute__((always_inline)) {
        const uint8_t* q3 = a.qs;
        const int8_t* q8 = b.qs;
        int bsum = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib, q3 += 8) {
          uint32_t aux;
          std::memcpy(&aux, a.qs + QK_K / 4 + 4 * ib, sizeof aux);
          int sumi = 0;
          for (int l = 0; l < 4; ++l, q8 += 8)
            sumi += signed_dot8(iq3_pair(kIq3xxsGrid[q3[2 * l]], kIq3xxsGrid[q3[2 * l + 1]]),
                                iq_signs_of((aux >> (7 * l)) & 127), q8);
          bsum += sumi * static_cast<int>(2 * (aux >> 28) + 1);
        }
        return static_cast<float>(bsum);
      });
}

float dot_iq3_s(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq3_s>(
      n, w, x, 1.0f, [](const block_iq3_s& a, const block_q8_K& b) __attribute__((always_inline)) {
        const int8_t* q8 = b.qs;
        int bsum = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
          int sumi = 0;
          for (int l = 0; l < 4; ++l, q8 += 8)
            sumi += signed_dot8(iq3_pair(kIq3sGrid[iq3s_index(a.qs, a.qh, ib, 2 * l)],
                                         kIq3sGrid[iq3s_index(a.qs, a.qh, ib, 2 * l + 1)]),
                                a.signs[4 * ib + l], q8);
          bsum += sumi * (2 * ((a.scales[ib / 2] >> (4 * (ib % 2))) & 0xf) + 1);
        }
        return static_cast<float>(bsum);
      });
}

inline int iq1_dot8(uint64_t entry, const int8_t* q8) {
  int s = 0;
  for (int j = 0; j < 8; ++j) s += grid_sbyte(entry, j) * q8[j];
  return s;
}

// IQ1_S: sum ls * (grid . q8) plus delta * ls * (sum of the sub-block's activations, from bsums).
float dot_iq1_s(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq1_s>(
      n, w, x, 1.0f, [](const block_iq1_s& a, const block_q8_K& b) __attribute__((always_inline)) {
        const int8_t* q8 = b.qs;
        int sumi = 0, sumi1 = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
          const uint16_t qh = a.qh[ib];
          const int ls = 2 * ((qh >> 12) & 7) + 1;
          const int delta = qh & 0x8000 ? -1 : 1;
          int lsum = 0;
          for (int l = 0; l < 4; ++l, q8 += 8) lsum += iq1_dot8(kIq1sGrid[iq1s_index(a.qs, a.qh, ib, l)], q8);
          sumi += ls * lsum;
          sumi1 += ls * delta * (b.bsums[2 * ib] + b.bsums[2 * ib + 1]);
        }
        return (static_cast<float>(sumi) + kIq1Delta * static_cast<float>(sumi1));
      });
}

// IQ1_M: as IQ1_S with a scale per 16 elements and a delta sign per 8.
float dot_iq1_m(int64_t n, const void* w, const void* x) {
  return iq_dot<block_iq1_m>(
      n, w, x, 1.0f, [](const block_iq1_m& a, const block_q8_K& b) __attribute__((always_inline)) {
        const int8_t* q8 = b.qs;
        int sumi1 = 0, sumi2 = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
          int sum1[2] = {}, sum2[2] = {};
          for (int l = 0; l < 4; ++l, q8 += 8) {
            int qsum = 0;
            for (int j = 0; j < 8; ++j) qsum += q8[j];
            sum1[l / 2] += iq1_dot8(kIq1sGrid[iq1m_index(a.qs, a.qh, ib, l)], q8);
            sum2[l / 2] += iq1m_delta_negative(a.qh, ib, l) ? -qsum : qsum;
          }
          const int ls1 = 2 * iq1m_subscale(a.scales, 2 * ib) + 1;
          const int ls2 = 2 * iq1m_subscale(a.scales, 2 * ib + 1) + 1;
          sumi1 += sum1[0] * ls1 + sum1[1] * ls2;
          sumi2 += sum2[0] * ls1 + sum2[1] * ls2;
        }
        return (static_cast<float>(sumi1) + kIq1Delta * static_cast<float>(sumi2));
      });
}

}  // namespace

void fill_rows_iq_scalar(KernelTable& t) {
  t.vec_dot[slot(GgmlType::IQ2_XXS)] = dot_iq2_xxs;
  t.vec_dot[slot(GgmlType::IQ2_XS)] = dot_iq2_xs;
  t.vec_dot[slot(GgmlType::IQ2_S)] = dot_iq2_s;
  t.vec_dot[slot(GgmlType::IQ3_XXS)] = dot_iq3_xxs;
  t.vec_dot[slot(GgmlType::IQ3_S)] = dot_iq3_s;
  t.vec_dot[slot(GgmlType::IQ1_S)] = dot_iq1_s;
  t.vec_dot[slot(GgmlType::IQ1_M)] = dot_iq1_m;
}

}  // namespace clusterctl::kernels::detail
