// Reference (scalar) quantisation and dequantisation, bit-compatible with ggml's block formats
// and numerically the same algorithms as ggml's *_ref quantisers (what llama-quantize runs
// without an importance matrix), so a file we write holds the bytes llama.cpp would write.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "worker/common/error.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/kernels.h"
#include "worker/kernels/quant_ref.h"
#include "worker/kernels/quant_ref_iq.h"

namespace clusterctl::kernels {
namespace {

// Below this a group is treated as all zeros (ggml's GROUP_MAX_EPS).
constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, for |x| < 2^22 (all quantisers stay far inside): adding
// 1.5 * 2^23 leaves the rounded integer in the low mantissa bits. Same as ggml's nearest_int,
// and inline, unlike lrintf, which the K-quant searches call millions of times.
inline int nearest_int(float x) {
  const float biased = x + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &biased, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

// Round-trips a scale through fp16: what a dequantiser will see.
inline float as_stored(fp16_t h) { return fp16_to_fp32(h); }

// ---------------------------------------------------------------- 32-element block formats

void quantize_q4_0(const float* x, block_q4_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_0) {
    float amax = 0, max = 0;  // the value of largest magnitude, with its sign
    for (int j = 0; j < QK4_0; ++j)
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
    // Map the extreme to -8 so the full 16 levels are used on its side.
    const float d = max / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const uint8_t q0 = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f))));
      const uint8_t q1 =
          static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f))));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void dequantize_q4_0(const block_q4_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_0) {
    const float d = as_stored(x[i].d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      y[j] = ((x[i].qs[j] & 0x0f) - 8) * d;
      y[j + 16] = ((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void min_max(const float* x, int n, float& mn, float& mx) {
  mn = x[0], mx = x[0];
  for (int j = 1; j < n; ++j) mn = std::min(mn, x[j]), mx = std::max(mx, x[j]);
}

void quantize_q4_1(const float* x, block_q4_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_1) {
    float mn, mx;
    min_max(x, QK4_1, mn, mx);
    const float d = (mx - mn) / 15;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(mn);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      const uint8_t q0 =
          static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - mn) * id + 0.5f))));
      const uint8_t q1 =
          static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>((x[j + 16] - mn) * id + 0.5f))));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void dequantize_q4_1(const block_q4_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_1) {
    const float d = as_stored(x[i].d), m = as_stored(x[i].m);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      y[j] = (x[i].qs[j] & 0x0f) * d + m;
      y[j + 16] = (x[i].qs[j] >> 4) * d + m;
    }
  }
}

// Q5 blocks keep the low four bits in qs (same layout as Q4) and bit 4 of element j in bit j of qh.
void pack_q5(const uint8_t* q, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
    qh |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((q[j + 16] >> 4) & 1) << (j + 16);
  }
  std::memcpy(qh_bytes, &qh, 4);  // little-endian, as ggml stores it
}

void unpack_q5(const uint8_t* qs, const uint8_t* qh_bytes, int* q) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  for (int j = 0; j < 16; ++j) {
    q[j] = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1) << 4);
    q[j + 16] = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
  }
}

void quantize_q5_0(const float* x, block_q5_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK5_0) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK5_0; ++j)
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
    const float d = max / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint8_t q[QK5_0];
    for (int j = 0; j < QK5_0; ++j)
      q[j] = static_cast<uint8_t>(std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f))));
    pack_q5(q, y[i].qs, y[i].qh);
  }
}

void dequantize_q5_0(const block_q5_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK5_0) {
    const float d = as_stored(x[i].d);
    int q[QK5_0];
    unpack_q5(x[i].qs, x[i].qh, q);
    for (int j = 0; j < QK5_0; ++j) y[j] = (q[j] - 16) * d;
  }
}

void quantize_q5_1(const float* x, block_q5_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK5_1) {
    float mn, mx;
    min_max(x, QK5_1, mn, mx);
    const float d = (mx - mn) / 31;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(mn);
    uint8_t q[QK5_1];
    for (int j = 0; j < QK5_1; ++j)
      q[j] = static_cast<uint8_t>(std::min(31, static_cast<int>((x[j] - mn) * id + 0.5f)));
    pack_q5(q, y[i].qs, y[i].qh);
  }
}

void dequantize_q5_1(const block_q5_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK5_1) {
    const float d = as_stored(x[i].d), m = as_stored(x[i].m);
    int q[QK5_1];
    unpack_q5(x[i].qs, x[i].qh, q);
    for (int j = 0; j < QK5_1; ++j) y[j] = q[j] * d + m;
  }
}

float abs_max(const float* x, int n) {
  float amax = 0;
  for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  return amax;
}

void quantize_q8_0(const float* x, block_q8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK8_0) {
    const float d = abs_max(x, QK8_0) / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

void dequantize_q8_0(const block_q8_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK8_0) {
    const float d = as_stored(x[i].d);
    for (int j = 0; j < QK8_0; ++j) y[j] = x[i].qs[j] * d;
  }
}

void quantize_q8_1(const float* x, block_q8_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK8_1) {
    const float d = abs_max(x, QK8_1) / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < QK8_1; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
      sum += y[i].qs[j];
    }
    // The Q4_1/Q5_1 dot products need sum(x) to apply the block minimum: keep it precomputed.
    y[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

void dequantize_q8_1(const block_q8_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK8_1) {
    const float d = as_stored(x[i].d);
    for (int j = 0; j < QK8_1; ++j) y[j] = x[i].qs[j] * d;
  }
}

// ---------------------------------------------------------------- 256-element super-blocks

void quantize_q8_K(const float* x, block_q8_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK_K; ++j)
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
    if (amax == 0) {
      y[i].d = 0;
      std::memset(y[i].qs, 0, sizeof y[i].qs);
      std::memset(y[i].bsums, 0, sizeof y[i].bsums);
      continue;
    }
    // -127 rather than -128 keeps every quant within [-127, 127] (SIMD sign tricks rely on it).
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int g = 0; g < QK_K / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += y[i].qs[g * 16 + j];
      y[i].bsums[g] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

void dequantize_q8_K(const block_q8_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK_K)
    for (int j = 0; j < QK_K; ++j) y[j] = x[i].d * x[i].qs[j];
}

// Fits x ≈ scale * L + min (L in [0, nmax], min <= 0) minimising the weighted squared error:
// a grid of candidate scales around the range, each refined by weighted least squares.
// Returns the scale and stores -min in the_min.
// (use_mad: the error is the weighted absolute difference instead, as Q2_K's fit uses.)
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, float rmin,
                    float rdelta, int nstep, bool use_mad = false) {
  float mn = x[0], mx = x[0];
  float sum_w = w[0], sum_x = w[0] * x[0];
  for (int i = 1; i < n; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (mn > 0) mn = 0;
  if (mx == mn) {
    std::fill(L, L + n, uint8_t{0});
    *the_min = -mn;
    return 0.f;
  }
  float iscale = nmax / (mx - mn);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::clamp(nearest_int(iscale * (x[i] - mn)), 0, nmax));
    const float diff = scale * L[i] + mn - x[i];
    best_error += w[i] * (use_mad ? std::fabs(diff) : diff * diff);
  }
  uint8_t Laux[QK_K];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (mx - mn);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - mn)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D <= 0) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {  // the format can only subtract: refit the scale alone
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = this_scale * Laux[i] + this_min - x[i];
      err += w[i] * (use_mad ? std::fabs(diff) : diff * diff);
    }
    if (err < best_error) {
      std::copy(Laux, Laux + n, L);
      best_error = err;
      scale = this_scale;
      mn = this_min;
    }
  }
  *the_min = -mn;
  return scale;
}

// Symmetric fit x ≈ scale * (L - nmax), L - nmax in [-nmax, nmax-1], weights x^2 (large values
// matter most); tries 19 scales around the extreme and keeps the best least-squares one.
float fit_symmetric(int n, int nmax, const float* x, uint8_t* L) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), max = x[i];
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, uint8_t{0});
    return 0.f;
  }
  auto quant = [&](float iscale, int i) { return std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1); };
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = quant(iscale, i);
    L[i] = static_cast<uint8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = quant(iscale, i);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(quant(iscale, i) + nmax);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// The inverse of k4_scale_min (quant_ref.h).
void put_scale_min_k4(int j, uint8_t ls, uint8_t lm, uint8_t* q) {
  if (j < 4) {
    q[j] = ls;
    q[j + 4] = lm;
  } else {
    q[j + 4] = static_cast<uint8_t>((ls & 0x0f) | ((lm & 0x0f) << 4));
    q[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
    q[j] |= static_cast<uint8_t>((lm >> 4) << 6);
  }
}

// Shared first half of Q4_K and Q5_K: per 32-element sub-block fits, 6-bit scales and mins
// relative to the block's d / dmin, then the final quants against the stored (rounded) scales.
void quantize_k_scales(const float* x, int nmax, float rmin, int nstep, uint8_t* scales_out, fp16_t& d_out,
                       fp16_t& dmin_out, uint8_t* L) {
  float scales[QK_K / 32], mins[QK_K / 32], weights[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < QK_K / 32; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    // Weight large values more, with a floor so small ones still count.
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_min(32, nmax, xs, weights, L + 32 * j, &mins[j], rmin, 0.1f, nstep);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(scales_out, 0, K_SCALE_SIZE);
  for (int j = 0; j < QK_K / 32; ++j) {
    const auto ls = static_cast<uint8_t>(std::min(63, nearest_int(inv_scale * scales[j])));
    const auto lm = static_cast<uint8_t>(std::min(63, nearest_int(inv_min * mins[j])));
    put_scale_min_k4(j, ls, lm, scales_out);
  }
  d_out = fp32_to_fp16(max_scale / 63.f);
  dmin_out = fp32_to_fp16(max_min / 63.f);
  for (int j = 0; j < QK_K / 32; ++j) {
    const detail::K4ScaleMin sm = detail::k4_scale_min(j, scales_out);
    const float d = as_stored(d_out) * sm.scale;
    if (d == 0) continue;
    const float dm = as_stored(dmin_out) * sm.min;
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + l] + dm) / d), 0, nmax));
  }
}

void quantize_q4_K(const float* x, block_q4_K* y, int64_t nb) {
  uint8_t L[QK_K];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    quantize_k_scales(x, 15, -1.f, 20, y[i].scales, y[i].d, y[i].dmin, L);
    // Each 64-element chunk: element l in the low nibble of byte l, element l+32 in the high one.
    uint8_t* q = y[i].qs;
    for (int j = 0; j < QK_K; j += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

void dequantize_q4_K(const block_q4_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = as_stored(x[i].d), dmin = as_stored(x[i].dmin);
    const uint8_t* q = x[i].qs;
    for (int j = 0, is = 0; j < QK_K; j += 64, q += 32, is += 2) {
      const detail::K4ScaleMin lo = detail::k4_scale_min(is, x[i].scales);
      const float d1 = d * lo.scale, m1 = dmin * lo.min;
      const detail::K4ScaleMin hi = detail::k4_scale_min(is + 1, x[i].scales);
      const float d2 = d * hi.scale, m2 = dmin * hi.min;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

void quantize_q5_K(const float* x, block_q5_K* y, int64_t nb) {
  uint8_t L[QK_K];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    quantize_k_scales(x, 31, -0.5f, 15, y[i].scales, y[i].d, y[i].dmin, L);
    // Low nibbles as in Q4_K; bit 4 of chunk c's elements goes to bits 2c / 2c+1 of qh[l].
    uint8_t* qh = y[i].qh;
    uint8_t* ql = y[i].qs;
    std::memset(qh, 0, QK_K / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QK_K;
         n += 64, ql += 32, m1 = static_cast<uint8_t>(m1 << 2), m2 = static_cast<uint8_t>(m2 << 2)) {
      for (int j = 0; j < 32; ++j) {
        int l1 = L[n + j], l2 = L[n + j + 32];
        if (l1 > 15) l1 -= 16, qh[j] |= m1;
        if (l2 > 15) l2 -= 16, qh[j] |= m2;
        ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
    }
  }
}

void dequantize_q5_K(const block_q5_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = as_stored(x[i].d), dmin = as_stored(x[i].dmin);
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    unsigned u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < QK_K; j += 64, ql += 32, is += 2, u1 <<= 2, u2 <<= 2) {
      const detail::K4ScaleMin lo = detail::k4_scale_min(is, x[i].scales);
      const float d1 = d * lo.scale, m1 = dmin * lo.min;
      const detail::K4ScaleMin hi = detail::k4_scale_min(is + 1, x[i].scales);
      const float d2 = d * hi.scale, m2 = dmin * hi.min;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0x0f) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}

void quantize_q6_K(const float* x, block_q6_K* y, int64_t nb) {
  uint8_t L[QK_K];
  float scales[QK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
      scales[ib] = fit_symmetric(16, 32, x + 16 * ib, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs_scale) max_abs_scale = std::fabs(scales[ib]), max_scale = scales[ib];
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    // 8-bit signed sub-block scales relative to d.
    const float iscale = -128.f / max_scale;
    y[i].d = fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ++ib)
      y[i].scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = as_stored(y[i].d) * y[i].scales[j];
      if (d == 0) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = static_cast<uint8_t>(std::clamp(nearest_int(x[16 * j + l] / d), -32, 31) + 32);
    }
    // Each 128-element half: low nibbles of elements l, l+64 share ql[l]; l+32, l+96 share ql[l+32];
    // the top two bits of the four go to qh[l] at bit offsets 0, 2, 4, 6.
    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
        ql[l] = static_cast<uint8_t>((q1 & 0x0f) | ((q3 & 0x0f) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 0x0f) | ((q4 & 0x0f) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

void dequantize_q6_K(const block_q6_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = as_stored(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}

// ---------------------------------------------------------------- Q2_K, Q3_K

void quantize_q2_K(const float* x, block_q2_K* y, int64_t nb) {
  uint8_t L[QK_K];
  float weights[16], mins[QK_K / 16], scales[QK_K / 16];
  constexpr float q4scale = 15.f;
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = fit_scale_min(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
      y[i].d = fp32_to_fp16(max_scale / q4scale);
    } else {
      std::memset(y[i].scales, 0, sizeof y[i].scales);
      y[i].d = fp32_to_fp16(0.f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < QK_K / 16; ++j)
        y[i].scales[j] = static_cast<uint8_t>(y[i].scales[j] | (nearest_int(iscale * mins[j]) << 4));
      y[i].dmin = fp32_to_fp16(max_min / q4scale);
    } else {
      y[i].dmin = fp32_to_fp16(0.f);
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = as_stored(y[i].d) * (y[i].scales[j] & 0xf);
      if (d == 0) continue;
      const float dm = as_stored(y[i].dmin) * (y[i].scales[j] >> 4);
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = static_cast<uint8_t>(std::clamp(nearest_int((x[16 * j + l] + dm) / d), 0, 3));
    }
    for (int j = 0; j < QK_K; j += 128)
      for (int l = 0; l < 32; ++l)
        y[i].qs[j / 4 + l] =
            static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
  }
}

void dequantize_q2_K(const block_q2_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = as_stored(x[i].d), mn = as_stored(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (int n = 0; n < QK_K; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const uint8_t sc = x[i].scales[is++];
          const float dl = d * (sc & 0xf), ml = mn * (sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// Symmetric 3-bit fit of 16 values (ggml's make_q3_quants with its rmse refinement): L in [0, 8).
float fit_q3(const float* x, int8_t* L) {
  constexpr int nmax = 4, n = 16;
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), max = x[i];
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.f;
  }
  const float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (slx > 0) {
        float sl2 = suml2 - w * L[i] * L[i];
        const int new_l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
        if (new_l != L[i]) {
          slx += w * x[i] * new_l;
          sl2 += w * new_l * new_l;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

void quantize_q3_K(const float* x, block_q3_K* y, int64_t nb) {
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    float max_scale = 0, amax = 0;
    for (int j = 0; j < QK_K / 16; ++j) {
      scales[j] = fit_q3(x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > amax) amax = std::fabs(scales[j]), max_scale = scales[j];
    }
    std::memset(y[i].scales, 0, 12);
    if (max_scale != 0) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < QK_K / 16; ++j) {
        int l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
        l = std::clamp(l, -32, 31) + 32;
        if (j < 8)
          y[i].scales[j] = static_cast<uint8_t>(l & 0xf);
        else
          y[i].scales[j - 8] = static_cast<uint8_t>(y[i].scales[j - 8] | ((l & 0xf) << 4));
        y[i].scales[j % 4 + 8] = static_cast<uint8_t>(y[i].scales[j % 4 + 8] | ((l >> 4) << (2 * (j / 4))));
      }
      y[i].d = fp32_to_fp16(1 / iscale);
    } else {
      y[i].d = fp32_to_fp16(0.f);
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = as_stored(y[i].d) * detail::q3k_scale(j, y[i].scales);
      if (d == 0) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + l] / d), -4, 3) + 4);
    }
    // The third bit of element j goes to bit j / 32 of hmask[j % 32].
    std::memset(y[i].hmask, 0, QK_K / 8);
    for (int j = 0; j < QK_K; ++j) {
      if (L[j] > 3) {
        y[i].hmask[j % 32] = static_cast<uint8_t>(y[i].hmask[j % 32] | (1 << (j / 32)));
        L[j] = static_cast<int8_t>(L[j] - 4);
      }
    }
    for (int j = 0; j < QK_K; j += 128)
      for (int l = 0; l < 32; ++l)
        y[i].qs[j / 4 + l] =
            static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
  }
}

void dequantize_q3_K(const block_q3_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d_all = as_stored(x[i].d);
    const uint8_t* q = x[i].qs;
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < QK_K; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
        for (int half = 0; half < 2; ++half) {
          const float dl = d_all * detail::q3k_scale(is++, x[i].scales);
          for (int l = 0; l < 16; ++l) {
            const int k = l + 16 * half;
            *y++ = dl * (((q[k] >> shift) & 3) - ((x[i].hmask[k] & m) ? 0 : 4));
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------- IQ4_NL, IQ4_XS

// Index of the table level nearest to x (ties to the lower), as ggml's best_index_int8.
int best_index_iq4(float x) {
  const int8_t* val = kValuesIq4nl;
  if (x <= val[0]) return 0;
  if (x >= val[15]) return 15;
  int ml = 0, mu = 15;
  while (mu - ml > 1) {
    const int mav = (ml + mu) / 2;
    if (x < val[mav])
      mu = mav;
    else
      ml = mav;
  }
  return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

// ggml's quantize_row_iq4_nl_impl without an importance matrix and with ntry = 7, which is what
// ggml_quantize_chunk (llama-quantize) runs for both types: per 32 values the best of 15 scales
// around the extreme, weighted by x^2. IQ4_XS (super = 256) then stores 6-bit sub-block scales
// relative to one fp16 d; IQ4_NL (super = 32) stores the scale itself.
void quantize_iq4(int super, const float* x, fp16_t* dh, uint8_t* q4, uint16_t* scales_h, uint8_t* scales_l) {
  constexpr int ntry = 7, bs = 32;
  const int8_t* values = kValuesIq4nl;
  uint8_t L[QK_K];
  float scales[QK_K / 32], weight[32];
  std::memset(q4, 0, static_cast<size_t>(super / 2));
  *dh = fp32_to_fp16(0.f);
  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < super / bs; ++ib) {
    const float* xb = x + ib * bs;
    uint8_t* Lb = L + ib * bs;
    for (int j = 0; j < bs; ++j) weight[j] = xb[j] * xb[j];
    float amax = 0, max = 0;
    for (int j = 0; j < bs; ++j)
      if (std::fabs(xb[j]) > amax) amax = std::fabs(xb[j]), max = xb[j];
    if (amax < kGroupMaxEps) {
      scales[ib] = 0;
      continue;
    }
    float d = -max / values[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < bs; ++j) {
      const int l = best_index_iq4(id * xb[j]);
      Lb[j] = static_cast<uint8_t>(l);
      const float q = values[l];
      const float w = weight[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -ntry; itry <= ntry; ++itry) {
      id = (itry + values[0]) / max;
      sumqx = sumq2 = 0;
      for (int j = 0; j < bs; ++j) {
        const float q = values[best_index_iq4(id * xb[j])];
        const float w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
    if (std::fabs(d) > amax_scale) amax_scale = std::fabs(d), max_scale = d;
  }
  if (super > bs) {
    *scales_h = 0;
    const float d = -max_scale / 32;
    *dh = fp32_to_fp16(d);
    const float id = d != 0 ? 1 / d : 0.f;
    for (int ib = 0; ib < super / bs; ++ib) {
      int l = std::clamp(nearest_int(id * scales[ib]), -32, 31);
      const float dl = d * l;
      const float idl = dl != 0 ? 1 / dl : 0.f;
      for (int j = 0; j < bs; ++j) L[ib * bs + j] = static_cast<uint8_t>(best_index_iq4(idl * x[ib * bs + j]));
      l += 32;
      if (ib % 2 == 0)
        scales_l[ib / 2] = static_cast<uint8_t>(l & 0xf);
      else
        scales_l[ib / 2] = static_cast<uint8_t>(scales_l[ib / 2] | ((l & 0xf) << 4));
      *scales_h = static_cast<uint16_t>(*scales_h | ((l >> 4) << (2 * (ib % 8))));
    }
  } else {
    *dh = fp32_to_fp16(scales[0]);
    const float id = scales[0] != 0 ? 1 / scales[0] : 0.f;
    for (int j = 0; j < super; ++j) L[j] = static_cast<uint8_t>(best_index_iq4(id * x[j]));
  }
  for (int i = 0; i < super / 32; ++i)
    for (int j = 0; j < 16; ++j) q4[16 * i + j] = static_cast<uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

void quantize_iq4_nl(const float* x, block_iq4_nl* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_NL) quantize_iq4(QK4_NL, x, &y[i].d, y[i].qs, nullptr, nullptr);
}

void quantize_iq4_xs(const float* x, block_iq4_xs* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK_K) quantize_iq4(QK_K, x, &y[i].d, y[i].qs, &y[i].scales_h, y[i].scales_l);
}

void dequantize_iq4_nl(const block_iq4_nl* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_NL) {
    const float d = as_stored(x[i].d);
    for (int j = 0; j < QK4_NL / 2; ++j) {
      y[j] = d * kValuesIq4nl[x[i].qs[j] & 0xf];
      y[j + QK4_NL / 2] = d * kValuesIq4nl[x[i].qs[j] >> 4];
    }
  }
}

void dequantize_iq4_xs(const block_iq4_xs* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = as_stored(x[i].d);
    const uint8_t* qs = x[i].qs;
    for (int ib = 0; ib < QK_K / 32; ++ib, y += 32, qs += 16) {
      const float dl = d * detail::iq4xs_scale(ib, x[i].scales_l, x[i].scales_h);
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * kValuesIq4nl[qs[j] & 0xf];
        y[j + 16] = dl * kValuesIq4nl[qs[j] >> 4];
      }
    }
  }
}

[[noreturn]] void unsupported(const char* what, GgmlType t) {
  throw Error(std::string(what) + ": tensor type " + std::string(gguf::type_name(t)) +
              " is not supported (supported: " + computable_type_names() + ", and the activation types Q8_1 Q8_K)");
}

int64_t blocks_of(GgmlType t, int64_t n, const char* what) {
  const auto bs = static_cast<int64_t>(gguf::type_traits(t).block_size);
  if (bs == 0 || n % bs != 0)
    throw Error(std::string(what) + ": row of " + std::to_string(n) + " elements is not a multiple of the " +
                std::string(gguf::type_name(t)) + " block size " + std::to_string(bs));
  return n / bs;
}

}  // namespace

void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n) {
  const char* what = "dequantize_row";
  switch (t) {
    case GgmlType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::F16: {
      const auto* s = static_cast<const fp16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(s[i]);
      return;
    }
    case GgmlType::BF16: {
      const auto* s = static_cast<const bf16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(s[i]);
      return;
    }
    case GgmlType::Q4_0:
      return dequantize_q4_0(static_cast<const block_q4_0*>(src), dst, blocks_of(t, n, what));
    case GgmlType::Q4_1:
      return dequantize_q4_1(static_cast<const block_q4_1*>(src), dst, blocks_of(t, n, what));
    case GgmlType::Q5_0:
      return dequantize_q5_0(static_cast<const block_q5_0*>(src), dst, blocks_of(t, n, what));
    case GgmlType::Q5_1:
      return dequantize_q5_1(static_cast<const block_q5_1*>(src), dst, blocks_of(t, n, what));
    case GgmlType::Q8_0:
      return dequantize_q8_0(static_cast<const block_q8_0*>(src), dst, blocks_of(t, n, what));
    case GgmlType::Q8_1:
      return dequantize_q8_1(static_cast<const block_q8_1*>(src), dst, blocks_of(t, n, what));
    case GgmlType::Q8_K:
      return dequantize_q8_K(static_cast<const block_q8_K*>(src), dst, blocks_of(t, n, what));
    case GgmlType::Q4_K:
      return dequantize_q4_K(static_cast<const block_q4_K*>(src), dst, blocks_of(t, n, what));
    case GgmlType::Q5_K:
      return dequantize_q5_K(static_cast<const block_q5_K*>(src), dst, blocks_of(t, n, what));
    case GgmlType::Q6_K:
      return dequantize_q6_K(static_cast<const block_q6_K*>(src), dst, blocks_of(t, n, what));
    case GgmlType::IQ4_XS:
      return dequantize_iq4_xs(static_cast<const block_iq4_xs*>(src), dst, blocks_of(t, n, what));
    case GgmlType::IQ4_NL:
      return dequantize_iq4_nl(static_cast<const block_iq4_nl*>(src), dst, blocks_of(t, n, what));
    case GgmlType::Q3_K:
      return dequantize_q3_K(static_cast<const block_q3_K*>(src), dst, blocks_of(t, n, what));
    case GgmlType::Q2_K:
      return dequantize_q2_K(static_cast<const block_q2_K*>(src), dst, blocks_of(t, n, what));
    case GgmlType::IQ2_XXS:
    case GgmlType::IQ2_XS:
    case GgmlType::IQ2_S:
    case GgmlType::IQ3_XXS:
    case GgmlType::IQ3_S:
    case GgmlType::IQ1_S:
    case GgmlType::IQ1_M:
      return detail::dequantize_iq_grid(t, src, dst, blocks_of(t, n, what));
    default:
      unsupported(what, t);
  }
}

void quantize_row(GgmlType t, const float* src, void* dst, int64_t n) {
  const char* what = "quantize_row";
  switch (t) {
    case GgmlType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::F16: {
      auto* d = static_cast<fp16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_fp16(src[i]);
      return;
    }
    case GgmlType::BF16: {
      auto* d = static_cast<bf16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_bf16(src[i]);
      return;
    }
    case GgmlType::Q4_0:
      return quantize_q4_0(src, static_cast<block_q4_0*>(dst), blocks_of(t, n, what));
    case GgmlType::Q4_1:
      return quantize_q4_1(src, static_cast<block_q4_1*>(dst), blocks_of(t, n, what));
    case GgmlType::Q5_0:
      return quantize_q5_0(src, static_cast<block_q5_0*>(dst), blocks_of(t, n, what));
    case GgmlType::Q5_1:
      return quantize_q5_1(src, static_cast<block_q5_1*>(dst), blocks_of(t, n, what));
    case GgmlType::Q8_0:
      return quantize_q8_0(src, static_cast<block_q8_0*>(dst), blocks_of(t, n, what));
    case GgmlType::Q8_1:
      return quantize_q8_1(src, static_cast<block_q8_1*>(dst), blocks_of(t, n, what));
    case GgmlType::Q8_K:
      return quantize_q8_K(src, static_cast<block_q8_K*>(dst), blocks_of(t, n, what));
    case GgmlType::Q4_K:
      return quantize_q4_K(src, static_cast<block_q4_K*>(dst), blocks_of(t, n, what));
    case GgmlType::Q5_K:
      return quantize_q5_K(src, static_cast<block_q5_K*>(dst), blocks_of(t, n, what));
    case GgmlType::Q6_K:
      return quantize_q6_K(src, static_cast<block_q6_K*>(dst), blocks_of(t, n, what));
    case GgmlType::IQ4_XS:
      return quantize_iq4_xs(src, static_cast<block_iq4_xs*>(dst), blocks_of(t, n, what));
    case GgmlType::IQ4_NL:
      return quantize_iq4_nl(src, static_cast<block_iq4_nl*>(dst), blocks_of(t, n, what));
    case GgmlType::Q3_K:
      return quantize_q3_K(src, static_cast<block_q3_K*>(dst), blocks_of(t, n, what));
    case GgmlType::Q2_K:
      return quantize_q2_K(src, static_cast<block_q2_K*>(dst), blocks_of(t, n, what));
    default:
      if (is_iq_grid_type(t))
        throw Error(std::string(what) + ": " + std::string(gguf::type_name(t)) +
                    " blocks come from llama.cpp's quantiser with an importance matrix, which clusterctl does not "
                    "have; quantize to Q2_K, Q3_K, IQ4_XS or wider, or use a file made by llama-quantize --imatrix");
      unsupported(what, t);
  }
}

std::vector<uint8_t> random_weight_rows(GgmlType t, int64_t rows, int64_t cols, uint32_t seed) {
  constexpr float kRms = 0.02f;
  const size_t row_bytes = static_cast<size_t>(gguf::row_bytes(t, static_cast<uint64_t>(cols)));
  std::vector<uint8_t> data(row_bytes * static_cast<size_t>(rows));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, kRms);
  std::vector<float> src(static_cast<size_t>(cols));
  const int64_t distinct = std::min<int64_t>(rows, 64);
  for (int64_t r = 0; r < distinct; ++r) {
    uint8_t* row = data.data() + static_cast<size_t>(r) * row_bytes;
    if (is_iq_grid_type(t)) {
      random_iq_blocks(t, uint64_t{seed} << 32 | static_cast<uint64_t>(r), kRms, row, cols);
      continue;
    }
    for (auto& v : src) v = normal(rng);
    quantize_row(t, src.data(), row, cols);
  }
  for (int64_t r = distinct; r < rows; ++r)
    std::memcpy(data.data() + static_cast<size_t>(r) * row_bytes,
                data.data() + static_cast<size_t>(r % distinct) * row_bytes, row_bytes);
  return data;
}

}  // namespace clusterctl::kernels
