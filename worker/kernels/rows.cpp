// The scalar row kernels (Layout::Rows) and activation quantisers: the reference every other
// ISA is tested against. The block math is
// ggml's (the GGUF bytes are ggml's), written out plainly.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "worker/kernels/blocks.h"
#include "worker/kernels/half.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/quant_ref.h"

namespace clusterctl::kernels::detail {

namespace {

// ---- activation quantisation ----------------------------------------------------------------
// Q8_0/Q8_1 use id = 127/amax and round-half-even, as ggml's x86 path does, so every ISA
// produces the same bytes.

void quantize_q8_0(const float* x, void* out, int64_t n) {
  auto* y = static_cast<block_q8_0*>(out);
  for (int64_t b = 0; b < n / QK8_0; ++b, x += QK8_0) {
    float amax = 0;
    for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float id = amax != 0 ? 127.f / amax : 0.f;
    y[b].d = float_to_half(amax / 127.f);
    for (int j = 0; j < QK8_0; ++j) y[b].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
  }
}

void quantize_q8_1(const float* x, void* out, int64_t n) {
  auto* y = static_cast<block_q8_1*>(out);
  for (int64_t b = 0; b < n / QK8_1; ++b, x += QK8_1) {
    float amax = 0;
    for (int j = 0; j < QK8_1; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0 ? 127.f / amax : 0.f;
    int sum = 0;
    for (int j = 0; j < QK8_1; ++j) {
      y[b].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
      sum += y[b].qs[j];
    }
    y[b].d = float_to_half(d);
    y[b].s = float_to_half(static_cast<float>(sum) * d);
  }
}

// Q8_K as ggml's quantize_row_q8_K_ref: the element of largest magnitude maps to -127.
void quantize_q8_K(const float* x, void* out, int64_t n) {
  auto* y = static_cast<block_q8_K*>(out);
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0) {
      std::memset(&y[b], 0, sizeof(block_q8_K));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; ++j) {
      const int v = static_cast<int>(std::nearbyint(iscale * x[j]));
      y[b].qs[j] = static_cast<int8_t>(std::min(127, v));
    }
    for (int g = 0; g < QK_K / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += y[b].qs[g * 16 + j];
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
    y[b].d = 1 / iscale;
  }
}

void quantize_f16(const float* x, void* out, int64_t n) {
  auto* y = static_cast<uint16_t*>(out);
  for (int64_t i = 0; i < n; ++i) y[i] = float_to_half(x[i]);
}

void quantize_bf16(const float* x, void* out, int64_t n) {
  auto* y = static_cast<uint16_t*>(out);
  for (int64_t i = 0; i < n; ++i) y[i] = float_to_bf16(x[i]);
}

// ---- vector updates ----------------------------------------------------------------------

void f16_scale(int64_t n, fp16_t* y, float s) {
  for (int64_t i = 0; i < n; ++i) y[i] = float_to_half(half_to_float(y[i]) * s);
}

void f16_mad(int64_t n, fp16_t* y, const fp16_t* x, float v) {
  for (int64_t i = 0; i < n; ++i) y[i] = float_to_half(std::fma(half_to_float(x[i]), v, half_to_float(y[i])));
}

void f16_to_f32(int64_t n, const fp16_t* x, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = half_to_float(x[i]);
}

void f32_mad(int64_t n, float* y, const float* x, float v) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::fma(x[i], v, y[i]);
}

void f32_column_dots(int64_t k, int64_t n, const float* bt, int64_t ld, const float* a, float* c) {
  for (int64_t j = 0; j < n; ++j) {
    float sum = 0.0f;
    for (int64_t i = 0; i < k; ++i) sum = std::fma(a[i], bt[i * ld + j], sum);
    c[j] = sum;
  }
}

// ---- dot products ---------------------------------------------------------------------------

float dot_f32(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const float*>(w);
  const auto* b = static_cast<const float*>(x);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(sum);
}

float dot_f16(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const uint16_t*>(x);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(half_to_float(a[i])) * half_to_float(b[i]);
  return static_cast<float>(sum);
}

float dot_bf16(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const uint16_t*>(x);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(bf16_to_float(a[i])) * bf16_to_float(b[i]);
  return static_cast<float>(sum);
}

float dot_q8_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q8_0*>(w);
  const auto* b = static_cast<const block_q8_0*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK8_0; ++j) sumi += a[i].qs[j] * b[i].qs[j];
    sum += static_cast<float>(sumi) * half_to_float(a[i].d) * half_to_float(b[i].d);
  }
  return sum;
}

float dot_q4_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q4_0*>(w);
  const auto* b = static_cast<const block_q8_0*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / QK4_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK4_0 / 2; ++j) {
      sumi += ((a[i].qs[j] & 0xf) - 8) * b[i].qs[j];
      sumi += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + QK4_0 / 2];
    }
    sum += static_cast<float>(sumi) * half_to_float(a[i].d) * half_to_float(b[i].d);
  }
  return sum;
}

float dot_q4_1(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q4_1*>(w);
  const auto* b = static_cast<const block_q8_1*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / QK4_1; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK4_1 / 2; ++j) {
      sumi += (a[i].qs[j] & 0xf) * b[i].qs[j];
      sumi += (a[i].qs[j] >> 4) * b[i].qs[j + QK4_1 / 2];
    }
    sum += static_cast<float>(sumi) * half_to_float(a[i].d) * half_to_float(b[i].d) +
           half_to_float(a[i].m) * half_to_float(b[i].s);
  }
  return sum;
}

// Bit j of qh is the fifth bit of element j (elements 0..15 in the low nibbles, 16..31 high).
int q5_fifth_bits(const uint8_t qh_bytes[4], int j) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  return static_cast<int>((qh >> j) & 1u) << 4;
}

float dot_q5_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q5_0*>(w);
  const auto* b = static_cast<const block_q8_0*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / QK5_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK5_0 / 2; ++j) {
      sumi += (((a[i].qs[j] & 0xf) | q5_fifth_bits(a[i].qh, j)) - 16) * b[i].qs[j];
      sumi += (((a[i].qs[j] >> 4) | q5_fifth_bits(a[i].qh, j + 16)) - 16) * b[i].qs[j + 16];
    }
    sum += static_cast<float>(sumi) * half_to_float(a[i].d) * half_to_float(b[i].d);
  }
  return sum;
}

float dot_q5_1(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q5_1*>(w);
  const auto* b = static_cast<const block_q8_1*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / QK5_1; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK5_1 / 2; ++j) {
      sumi += ((a[i].qs[j] & 0xf) | q5_fifth_bits(a[i].qh, j)) * b[i].qs[j];
      sumi += ((a[i].qs[j] >> 4) | q5_fifth_bits(a[i].qh, j + 16)) * b[i].qs[j + 16];
    }
    sum += static_cast<float>(sumi) * half_to_float(a[i].d) * half_to_float(b[i].d) +
           half_to_float(a[i].m) * half_to_float(b[i].s);
  }
  return sum;
}

// Sum over the 8 sub-blocks of min_j * (sum of the 32 activations of sub-block j).
int k4_min_correction(const uint8_t* scales, const int16_t* bsums) {
  int sum = 0;
  for (int j = 0; j < 8; ++j) {
    sum += k4_scale_min(j, scales).min * (bsums[2 * j] + bsums[2 * j + 1]);
  }
  return sum;
}

float dot_q4_K(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q4_K*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* q4 = a[i].qs;
    const int8_t* q8 = b[i].qs;
    int sumi = 0;
    for (int chunk = 0; chunk < 4; ++chunk, q4 += 32, q8 += 64) {
      const int sc_lo = k4_scale_min(2 * chunk, a[i].scales).scale;
      const int sc_hi = k4_scale_min(2 * chunk + 1, a[i].scales).scale;
      int lo = 0, hi = 0;
      for (int l = 0; l < 32; ++l) {
        lo += (q4[l] & 0xf) * q8[l];
        hi += (q4[l] >> 4) * q8[l + 32];
      }
      sumi += sc_lo * lo + sc_hi * hi;
    }
    const int mins = k4_min_correction(a[i].scales, b[i].bsums);
    sum += b[i].d *
           (half_to_float(a[i].d) * static_cast<float>(sumi) - half_to_float(a[i].dmin) * static_cast<float>(mins));
  }
  return sum;
}

float dot_q5_K(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q5_K*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* q5 = a[i].qs;
    const int8_t* q8 = b[i].qs;
    int sumi = 0;
    for (int chunk = 0; chunk < 4; ++chunk, q5 += 32, q8 += 64) {
      const int sc_lo = k4_scale_min(2 * chunk, a[i].scales).scale;
      const int sc_hi = k4_scale_min(2 * chunk + 1, a[i].scales).scale;
      const uint8_t bit_lo = static_cast<uint8_t>(1u << (2 * chunk));
      const uint8_t bit_hi = static_cast<uint8_t>(2u << (2 * chunk));
      int lo = 0, hi = 0;
      for (int l = 0; l < 32; ++l) {
        lo += ((q5[l] & 0xf) + ((a[i].qh[l] & bit_lo) ? 16 : 0)) * q8[l];
        hi += ((q5[l] >> 4) + ((a[i].qh[l] & bit_hi) ? 16 : 0)) * q8[l + 32];
      }
      sumi += sc_lo * lo + sc_hi * hi;
    }
    const int mins = k4_min_correction(a[i].scales, b[i].bsums);
    sum += b[i].d *
           (half_to_float(a[i].d) * static_cast<float>(sumi) - half_to_float(a[i].dmin) * static_cast<float>(mins));
  }
  return sum;
}

float dot_q6_K(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q6_K*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* ql = a[i].ql;
    const uint8_t* qh = a[i].qh;
    const int8_t* sc = a[i].scales;
    const int8_t* q8 = b[i].qs;
    int sumi = 0;
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, q8 += 128) {
      int part[8] = {};  // one partial sum per 16-element sub-block
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int v1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int v2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int v3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int v4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        part[is + 0] += v1 * q8[l];
        part[is + 2] += v2 * q8[l + 32];
        part[is + 4] += v3 * q8[l + 64];
        part[is + 6] += v4 * q8[l + 96];
      }
      for (int s = 0; s < 8; ++s) sumi += sc[s] * part[s];
    }
    sum += half_to_float(a[i].d) * b[i].d * static_cast<float>(sumi);
  }
  return sum;
}

// Q2_K: sum over 16-element sub-blocks of scale * dot(2-bit quants, q8) minus the min term from
// the activation block sums.
float dot_q2_K(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q2_K*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int summs = 0;
    for (int j = 0; j < 16; ++j) summs += (a[i].scales[j] >> 4) * b[i].bsums[j];
    const uint8_t* q2 = a[i].qs;
    const int8_t* q8 = b[i].qs;
    int isum = 0, is = 0;
    for (int half = 0; half < 2; ++half, q2 += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int k = 0; k < 2; ++k, q8 += 16) {
          int s = 0;
          for (int l = 0; l < 16; ++l) s += q8[l] * ((q2[l + 16 * k] >> shift) & 3);
          isum += (a[i].scales[is++] & 0xf) * s;
        }
      }
    }
    sum += b[i].d *
           (half_to_float(a[i].d) * static_cast<float>(isum) - half_to_float(a[i].dmin) * static_cast<float>(summs));
  }
  return sum;
}

float dot_q3_K(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q3_K*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* q3 = a[i].qs;
    const int8_t* q8 = b[i].qs;
    int isum = 0, is = 0;
    uint8_t m = 1;
    for (int half = 0; half < 2; ++half, q3 += 32) {
      for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
        for (int k = 0; k < 2; ++k, q8 += 16) {
          int s = 0;
          for (int l = 0; l < 16; ++l) {
            const int j = l + 16 * k;
            s += q8[l] * (((q3[j] >> shift) & 3) - ((a[i].hmask[j] & m) ? 0 : 4));
          }
          isum += q3k_scale(is++, a[i].scales) * s;
        }
      }
    }
    sum += half_to_float(a[i].d) * b[i].d * static_cast<float>(isum);
  }
  return sum;
}

float dot_iq4_nl(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_iq4_nl*>(w);
  const auto* b = static_cast<const block_q8_0*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / QK4_NL; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK4_NL / 2; ++j) {
      sumi += kValuesIq4nl[a[i].qs[j] & 0xf] * b[i].qs[j];
      sumi += kValuesIq4nl[a[i].qs[j] >> 4] * b[i].qs[j + QK4_NL / 2];
    }
    sum += static_cast<float>(sumi) * half_to_float(a[i].d) * half_to_float(b[i].d);
  }
  return sum;
}

float dot_iq4_xs(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_iq4_xs*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* qs = a[i].qs;
    const int8_t* q8 = b[i].qs;
    int isum = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib, qs += 16, q8 += 32) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += kValuesIq4nl[qs[j] & 0xf] * q8[j] + kValuesIq4nl[qs[j] >> 4] * q8[j + 16];
      isum += iq4xs_scale(ib, a[i].scales_l, a[i].scales_h) * s;
    }
    sum += half_to_float(a[i].d) * b[i].d * static_cast<float>(isum);
  }
  return sum;
}

}  // namespace

void fill_rows_scalar(KernelTable& t) {
  t.f16_scale = f16_scale;
  t.f16_mad = f16_mad;
  t.f16_to_f32 = f16_to_f32;
  t.f32_mad = f32_mad;
  t.f32_column_dots = f32_column_dots;
  t.quantize[slot(GgmlType::Q8_0)] = quantize_q8_0;
  t.quantize[slot(GgmlType::Q8_1)] = quantize_q8_1;
  t.quantize[slot(GgmlType::Q8_K)] = quantize_q8_K;
  t.quantize[slot(GgmlType::F16)] = quantize_f16;
  t.quantize[slot(GgmlType::BF16)] = quantize_bf16;
  t.vec_dot[slot(GgmlType::F32)] = dot_f32;
  t.vec_dot[slot(GgmlType::F16)] = dot_f16;
  t.vec_dot[slot(GgmlType::BF16)] = dot_bf16;
  t.vec_dots[slot(GgmlType::F32)] = dots_row_by_row<dot_f32>;
  t.vec_dots[slot(GgmlType::F16)] = dots_row_by_row<dot_f16>;
  t.vec_dots[slot(GgmlType::BF16)] = dots_row_by_row<dot_bf16>;
  t.vec_dot[slot(GgmlType::Q8_0)] = dot_q8_0;
  t.vec_dot[slot(GgmlType::Q4_0)] = dot_q4_0;
  t.vec_dot[slot(GgmlType::Q4_1)] = dot_q4_1;
  t.vec_dot[slot(GgmlType::Q5_0)] = dot_q5_0;
  t.vec_dot[slot(GgmlType::Q5_1)] = dot_q5_1;
  t.vec_dot[slot(GgmlType::Q4_K)] = dot_q4_K;
  t.vec_dot[slot(GgmlType::Q5_K)] = dot_q5_K;
  t.vec_dot[slot(GgmlType::Q6_K)] = dot_q6_K;
  t.vec_dot[slot(GgmlType::Q2_K)] = dot_q2_K;
  t.vec_dot[slot(GgmlType::Q3_K)] = dot_q3_K;
  t.vec_dot[slot(GgmlType::IQ4_NL)] = dot_iq4_nl;
  t.vec_dot[slot(GgmlType::IQ4_XS)] = dot_iq4_xs;
}

}  // namespace clusterctl::kernels::detail
