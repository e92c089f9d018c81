// NEON row kernels (Layout::Rows) and activation quantisers for AArch64 (Linux and Apple
// silicon): integer dot products with vdotq_s32 when
// the compiler targets dotprod (-march=...+dotprod, Apple's default), with a widening-multiply
// fallback otherwise. Activation quantisation rounds half-to-even like the other ISAs, so the
// quantised activations are byte-identical to the scalar reference.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "worker/kernels/arm/neon_common.h"
#include "worker/kernels/arm/rows_lowbit.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/half.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/quant_ref.h"

namespace clusterctl::kernels::detail {
namespace {

// ---- activation quantisation ----------------------------------------------------------------

// Rounds 32 floats times id to nearest-even and stores them as bytes; returns their sum.
inline int round_pack32(const float* x, float id, int8_t* out) {
  int32x4_t sum = vdupq_n_s32(0);
  for (int j = 0; j < 32; j += 8) {
    const int32x4_t a = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j), id));
    const int32x4_t b = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 4), id));
    sum = vaddq_s32(sum, vaddq_s32(a, b));
    const int16x8_t h = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
    vst1_s8(out + j, vqmovn_s16(h));
  }
  return vaddvq_s32(sum);
}

inline float abs_max(const float* x, int n) {
  float32x4_t m = vdupq_n_f32(0);
  for (int j = 0; j < n; j += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + j)));
  return vmaxvq_f32(m);
}

void quantize_q8_0(const float* x, void* out, int64_t n) {
  auto* y = static_cast<block_q8_0*>(out);
  for (int64_t b = 0; b < n / QK8_0; ++b, x += QK8_0) {
    const float amax = abs_max(x, QK8_0);
    y[b].d = float_to_half(amax / 127.f);
    round_pack32(x, amax != 0 ? 127.f / amax : 0.f, y[b].qs);
  }
}

void quantize_q8_1(const float* x, void* out, int64_t n) {
  auto* y = static_cast<block_q8_1*>(out);
  for (int64_t b = 0; b < n / QK8_1; ++b, x += QK8_1) {
    const float amax = abs_max(x, QK8_1);
    const float d = amax / 127.f;
    const int sum = round_pack32(x, amax != 0 ? 127.f / amax : 0.f, y[b].qs);
    y[b].d = float_to_half(d);
    y[b].s = float_to_half(static_cast<float>(sum) * d);
  }
}

void quantize_q8_K(const float* x, void* out, int64_t n) {
  auto* y = static_cast<block_q8_K*>(out);
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    const float amax = abs_max(x, QK_K);
    if (amax == 0) {
      std::memset(&y[b], 0, sizeof(block_q8_K));
      continue;
    }
    float max = amax;  // the signed value of the first element of largest magnitude
    for (int j = 0; j < QK_K; ++j)
      if (std::fabs(x[j]) == amax) {
        max = x[j];
        break;
      }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; j += 32) round_pack32(x + j, iscale, y[b].qs + j);
    for (int g = 0; g < QK_K / 16; ++g) y[b].bsums[g] = static_cast<int16_t>(vaddlvq_s8(vld1q_s8(y[b].qs + 16 * g)));
    y[b].d = 1 / iscale;
  }
}

void quantize_f16(const float* x, void* out, int64_t n) {
  auto* y = static_cast<uint16_t*>(out);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
  for (; i < n; ++i) y[i] = float_to_half(x[i]);
}

// ---- vector updates (FCVTL/FCVTN round to nearest-even: the scalar ones' bits) -------------

inline float32x4_t from_half4(const fp16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
inline void store_half4(fp16_t* p, float32x4_t v) { vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(v))); }

void f16_scale(int64_t n, fp16_t* y, float s) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) store_half4(y + i, vmulq_n_f32(from_half4(y + i), s));
  for (; i < n; ++i) y[i] = float_to_half(half_to_float(y[i]) * s);
}

void f16_mad(int64_t n, fp16_t* y, const fp16_t* x, float v) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) store_half4(y + i, vfmaq_n_f32(from_half4(y + i), from_half4(x + i), v));
  for (; i < n; ++i) y[i] = float_to_half(std::fma(half_to_float(x[i]), v, half_to_float(y[i])));
}

void f16_to_f32(int64_t n, const fp16_t* x, float* y) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, from_half4(x + i));
  for (; i < n; ++i) y[i] = half_to_float(x[i]);
}

void f32_mad(int64_t n, float* y, const float* x, float v) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), v));
  for (; i < n; ++i) y[i] = std::fma(x[i], v, y[i]);
}

// Four vectors of columns per pass over a: independent fma chains, one per lane.
void f32_column_dots(int64_t k, int64_t n, const float* bt, int64_t ld, const float* a, float* c) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    float32x4_t c0 = vdupq_n_f32(0), c1 = vdupq_n_f32(0), c2 = vdupq_n_f32(0), c3 = vdupq_n_f32(0);
    for (int64_t i = 0; i < k; ++i) {
      const float* b = bt + i * ld + j;
      c0 = vfmaq_n_f32(c0, vld1q_f32(b), a[i]);
      c1 = vfmaq_n_f32(c1, vld1q_f32(b + 4), a[i]);
      c2 = vfmaq_n_f32(c2, vld1q_f32(b + 8), a[i]);
      c3 = vfmaq_n_f32(c3, vld1q_f32(b + 12), a[i]);
    }
    vst1q_f32(c + j, c0);
    vst1q_f32(c + j + 4, c1);
    vst1q_f32(c + j + 8, c2);
    vst1q_f32(c + j + 12, c3);
  }
  for (; j + 4 <= n; j += 4) {
    float32x4_t c0 = vdupq_n_f32(0);
    for (int64_t i = 0; i < k; ++i) c0 = vfmaq_n_f32(c0, vld1q_f32(bt + i * ld + j), a[i]);
    vst1q_f32(c + j, c0);
  }
  for (; j < n; ++j) {
    float sum = 0.0f;
    for (int64_t i = 0; i < k; ++i) sum = std::fma(a[i], bt[i * ld + j], sum);
    c[j] = sum;
  }
}

// ---- float dot products ---------------------------------------------------------------------

float dot_f32(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const float*>(w);
  const auto* b = static_cast<const float*>(x);
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0), acc2 = vdupq_n_f32(0), acc3 = vdupq_n_f32(0);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    acc2 = vfmaq_f32(acc2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
    acc3 = vfmaq_f32(acc3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
  }
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float dot_f16(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const uint16_t*>(x);
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t va = vreinterpretq_f16_u16(vld1q_u16(a + i));
    const float16x8_t vb = vreinterpretq_f16_u16(vld1q_u16(b + i));
    acc0 = vfmaq_f32(acc0, vcvt_f32_f16(vget_low_f16(va)), vcvt_f32_f16(vget_low_f16(vb)));
    acc1 = vfmaq_f32(acc1, vcvt_high_f32_f16(va), vcvt_high_f32_f16(vb));
  }
  float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
  for (; i < n; ++i) sum += h2f(a[i]) * h2f(b[i]);
  return sum;
}

float dot_bf16(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const uint16_t*>(x);
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint16x8_t va = vld1q_u16(a + i), vb = vld1q_u16(b + i);
    acc0 = vfmaq_f32(acc0, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(va), 16)),
                     vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(vb), 16)));
    acc1 = vfmaq_f32(acc1, vreinterpretq_f32_u32(vshll_high_n_u16(va, 16)),
                     vreinterpretq_f32_u32(vshll_high_n_u16(vb, 16)));
  }
  float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
  for (; i < n; ++i) sum += bf16_to_float(a[i]) * bf16_to_float(b[i]);
  return sum;
}

// ---- 32-element block quants ----------------------------------------------------------------

inline int32x4_t dot32(int8x16_t a0, int8x16_t a1, const int8_t* y) {
  return dot_s8(dot_s8(vdupq_n_s32(0), a0, vld1q_s8(y)), a1, vld1q_s8(y + 16));
}

float dot_q8_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q8_0*>(w);
  const auto* b = static_cast<const block_q8_0*>(x);
  float32x4_t acc = vdupq_n_f32(0);
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const int32x4_t s = dot32(vld1q_s8(a[i].qs), vld1q_s8(a[i].qs + 16), b[i].qs);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), h2f(a[i].d) * h2f(b[i].d));
  }
  return vaddvq_f32(acc);
}

// The low and high nibbles of 16 bytes: elements 0..15 and 16..31 of a block.
inline void nibbles(const uint8_t* qs, int8x16_t* lo, int8x16_t* hi) {
  const uint8x16_t bytes = vld1q_u8(qs);
  *lo = vreinterpretq_s8_u8(vandq_u8(bytes, vdupq_n_u8(0x0f)));
  *hi = vreinterpretq_s8_u8(vshrq_n_u8(bytes, 4));
}

float dot_q4_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q4_0*>(w);
  const auto* b = static_cast<const block_q8_0*>(x);
  float32x4_t acc = vdupq_n_f32(0);
  const int8x16_t eight = vdupq_n_s8(8);
  for (int64_t i = 0; i < n / QK4_0; ++i) {
    int8x16_t lo, hi;
    nibbles(a[i].qs, &lo, &hi);
    const int32x4_t s = dot32(vsubq_s8(lo, eight), vsubq_s8(hi, eight), b[i].qs);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), h2f(a[i].d) * h2f(b[i].d));
  }
  return vaddvq_f32(acc);
}

float dot_q4_1(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q4_1*>(w);
  const auto* b = static_cast<const block_q8_1*>(x);
  float32x4_t acc = vdupq_n_f32(0);
  float mins = 0;
  for (int64_t i = 0; i < n / QK4_1; ++i) {
    int8x16_t lo, hi;
    nibbles(a[i].qs, &lo, &hi);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(dot32(lo, hi, b[i].qs)), h2f(a[i].d) * h2f(b[i].d));
    mins += h2f(a[i].m) * h2f(b[i].s);
  }
  return vaddvq_f32(acc) + mins;
}

// 0x10 in each byte whose bit of qh is set: elements 0..15 (bits 0..15) and 16..31 (bits 16..31).
inline void fifth_bits(const uint8_t qh[4], uint8x16_t* lo, uint8x16_t* hi) {
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t bit = vld1q_u8(kBit);
  const uint8x16_t b01 = vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1]));
  const uint8x16_t b23 = vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3]));
  *lo = vandq_u8(vtstq_u8(b01, bit), vdupq_n_u8(0x10));
  *hi = vandq_u8(vtstq_u8(b23, bit), vdupq_n_u8(0x10));
}

template <bool Offset, typename Block>
inline int32x4_t q5_block_dot(const Block& blk, const int8_t* y) {
  int8x16_t lo, hi;
  nibbles(blk.qs, &lo, &hi);
  uint8x16_t hlo, hhi;
  fifth_bits(blk.qh, &hlo, &hhi);
  lo = vorrq_s8(lo, vreinterpretq_s8_u8(hlo));
  hi = vorrq_s8(hi, vreinterpretq_s8_u8(hhi));
  if constexpr (Offset) {
    lo = vsubq_s8(lo, vdupq_n_s8(16));
    hi = vsubq_s8(hi, vdupq_n_s8(16));
  }
  return dot32(lo, hi, y);
}

float dot_q5_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q5_0*>(w);
  const auto* b = static_cast<const block_q8_0*>(x);
  float32x4_t acc = vdupq_n_f32(0);
  for (int64_t i = 0; i < n / QK5_0; ++i)
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(q5_block_dot<true>(a[i], b[i].qs)), h2f(a[i].d) * h2f(b[i].d));
  return vaddvq_f32(acc);
}

// Q5_0 decoding, 8 rows per call (Q5_0 is what a Q4_K_M file holds for rows that are not whole
// 256-blocks, such as DeepSeek-V2-Lite's 1408-wide expert down projections). Each row's arithmetic
// is dot_q5_0's (four lanes of block sums times the two scales, added across at the end), so a row
// gives the same bits either way; the activation block and its scale are loaded once for the 8
// rows, and matmul_row_parallel's weighted chunks no longer take one vec_dot per row and chunk.
inline void q5_0_rows8_blocks(int64_t b0, int64_t b1, const uint8_t* w, size_t w_stride, const block_q8_0* x,
                              float32x4_t acc[kDecodeRows]) {
  for (int64_t i = b0; i < b1; ++i) {
    const float dx = h2f(x[i].d);
    for (int r = 0; r < kDecodeRows; ++r) {
      const block_q5_0& blk = reinterpret_cast<const block_q5_0*>(w + r * w_stride)[i];
      acc[r] = vfmaq_n_f32(acc[r], vcvtq_f32_s32(q5_block_dot<true>(blk, x[i].qs)), h2f(blk.d) * dx);
    }
  }
}

void rows_dot_q5_0(int64_t n, const uint8_t* w, size_t w_stride, int n_rows, const void* x, float* y) {
  if (n_rows != kDecodeRows) {  // the contract allows fewer rows; the matmul never passes them
    for (int r = 0; r < n_rows; ++r) y[r] = dot_q5_0(n, w + r * w_stride, x);
    return;
  }
  float32x4_t acc[kDecodeRows];
  for (float32x4_t& a : acc) a = vdupq_n_f32(0);
  q5_0_rows8_blocks(0, n / QK5_0, w, w_stride, static_cast<const block_q8_0*>(x), acc);
  for (int r = 0; r < kDecodeRows; ++r) y[r] = vaddvq_f32(acc[r]);
}

// Each row's float sum restarts every `chunk` elements and is folded into a double, times `scale`
// in float first: matmul_row_parallel's per-chunk vec_dot, bit for bit.
void chunked_rows_dot_q5_0(int64_t n, int64_t chunk, const uint8_t* w, size_t w_stride, int n_rows, const void* x,
                           double* y, float scale) {
  const auto* b = static_cast<const block_q8_0*>(x);
  if (n_rows != kDecodeRows) {
    for (int r = 0; r < n_rows; ++r) {
      const auto* a = reinterpret_cast<const block_q5_0*>(w + r * w_stride);
      double sum = 0;
      for (int64_t k = 0; k < n; k += chunk)
        sum += dot_q5_0(std::min(chunk, n - k), a + k / QK5_0, b + k / QK8_0) * scale;
      y[r] = sum;
    }
    return;
  }
  double sum[kDecodeRows] = {};
  for (int64_t k = 0; k < n; k += chunk) {
    float32x4_t acc[kDecodeRows];
    for (float32x4_t& a : acc) a = vdupq_n_f32(0);
    q5_0_rows8_blocks(k / QK5_0, std::min(n, k + chunk) / QK5_0, w, w_stride, b, acc);
    for (int r = 0; r < kDecodeRows; ++r) sum[r] += vaddvq_f32(acc[r]) * scale;
  }
  std::copy(sum, sum + kDecodeRows, y);
}

float dot_q5_1(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q5_1*>(w);
  const auto* b = static_cast<const block_q8_1*>(x);
  float32x4_t acc = vdupq_n_f32(0);
  float mins = 0;
  for (int64_t i = 0; i < n / QK5_1; ++i) {
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(q5_block_dot<false>(a[i], b[i].qs)), h2f(a[i].d) * h2f(b[i].d));
    mins += h2f(a[i].m) * h2f(b[i].s);
  }
  return vaddvq_f32(acc) + mins;
}

// ---- K-quants -------------------------------------------------------------------------------

// The 8 scales (bytes 0..7) and 8 mins (bytes 8..15) of a Q4_K/Q5_K block.
inline void k4_scales_mins(const uint8_t* q, uint8_t out[16]) {
  for (int j = 0; j < 8; ++j) {
    const K4ScaleMin s = k4_scale_min(j, q);
    out[j] = s.scale;
    out[8 + j] = s.min;
  }
}

// sum over sub-blocks of min_j * (sum of the 32 activations of sub-block j)
inline int k4_mins_dot(const uint8_t* mins8, const int16_t* bsums) {
  const int16x8_t pairs = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8));
  const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mins8)));
  const int32x4_t p = vaddq_s32(vmull_s16(vget_low_s16(pairs), vget_low_s16(m)), vmull_high_s16(pairs, m));
  return vaddvq_s32(p);
}

template <bool Fifth, typename Block>
float dot_k4(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const Block*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    uint8_t sm[16];
    k4_scales_mins(a[i].scales, sm);
    const int mins = k4_mins_dot(sm + 8, b[i].bsums);
    const uint8_t* q4 = a[i].qs;
    const int8_t* q8 = b[i].qs;
    uint8x16_t qh0 = vdupq_n_u8(0), qh1 = vdupq_n_u8(0);
    if constexpr (Fifth) {
      qh0 = vld1q_u8(a[i].qh);
      qh1 = vld1q_u8(a[i].qh + 16);
    }
    int sumi = 0;
    for (int j = 0; j < 4; ++j, q4 += 32, q8 += 64) {
      int8x16_t lo0, hi0, lo1, hi1;
      nibbles(q4, &lo0, &hi0);
      nibbles(q4 + 16, &lo1, &hi1);
      if constexpr (Fifth) {
        const uint8x16_t bit_lo = vdupq_n_u8(static_cast<uint8_t>(1u << (2 * j)));
        const uint8x16_t bit_hi = vdupq_n_u8(static_cast<uint8_t>(2u << (2 * j)));
        const uint8x16_t s16 = vdupq_n_u8(16);
        lo0 = vorrq_s8(lo0, vreinterpretq_s8_u8(vandq_u8(vtstq_u8(qh0, bit_lo), s16)));
        lo1 = vorrq_s8(lo1, vreinterpretq_s8_u8(vandq_u8(vtstq_u8(qh1, bit_lo), s16)));
        hi0 = vorrq_s8(hi0, vreinterpretq_s8_u8(vandq_u8(vtstq_u8(qh0, bit_hi), s16)));
        hi1 = vorrq_s8(hi1, vreinterpretq_s8_u8(vandq_u8(vtstq_u8(qh1, bit_hi), s16)));
      }
      sumi += vaddvq_s32(dot32(lo0, lo1, q8)) * sm[2 * j];
      sumi += vaddvq_s32(dot32(hi0, hi1, q8 + 32)) * sm[2 * j + 1];
    }
    sum += b[i].d * (h2f(a[i].d) * static_cast<float>(sumi) - h2f(a[i].dmin) * static_cast<float>(mins));
  }
  return sum;
}

float dot_q6_K(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q6_K*>(w);
  const auto* b = static_cast<const block_q8_K*>(x);
  const uint8x16_t m4 = vdupq_n_u8(0x0f), m2 = vdupq_n_u8(0x03);
  const int8x16_t off = vdupq_n_s8(32);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* ql = a[i].ql;
    const uint8_t* qh = a[i].qh;
    const int8_t* sc = a[i].scales;
    const int8_t* q8 = b[i].qs;
    int sumi = 0;
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, q8 += 128) {
      for (int part = 0; part < 2; ++part) {  // elements 16*part .. +15 of each quarter
        const uint8x16_t la = vld1q_u8(ql + 16 * part), lb = vld1q_u8(ql + 32 + 16 * part);
        const uint8x16_t h = vld1q_u8(qh + 16 * part);
        const int8x16_t v0 =
            vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(la, m4), vshlq_n_u8(vandq_u8(h, m2), 4))), off);
        const int8x16_t v1 = vsubq_s8(
            vreinterpretq_s8_u8(vorrq_u8(vandq_u8(lb, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), m2), 4))), off);
        const int8x16_t v2 = vsubq_s8(
            vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(la, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), m2), 4))), off);
        const int8x16_t v3 =
            vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(lb, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4))), off);
        const int32x4_t z = vdupq_n_s32(0);
        sumi += vaddvq_s32(dot_s8(z, v0, vld1q_s8(q8 + 16 * part))) * sc[part + 0];
        sumi += vaddvq_s32(dot_s8(z, v1, vld1q_s8(q8 + 32 + 16 * part))) * sc[part + 2];
        sumi += vaddvq_s32(dot_s8(z, v2, vld1q_s8(q8 + 64 + 16 * part))) * sc[part + 4];
        sumi += vaddvq_s32(dot_s8(z, v3, vld1q_s8(q8 + 96 + 16 * part))) * sc[part + 6];
      }
    }
    sum += h2f(a[i].d) * b[i].d * static_cast<float>(sumi);
  }
  return sum;
}

}  // namespace

void fill_rows_neon(KernelTable& t) {
  t.f16_scale = f16_scale;
  t.f16_mad = f16_mad;
  t.f16_to_f32 = f16_to_f32;
  t.f32_mad = f32_mad;
  t.f32_column_dots = f32_column_dots;
  t.quantize[slot(GgmlType::Q8_0)] = quantize_q8_0;
  t.quantize[slot(GgmlType::Q8_1)] = quantize_q8_1;
  t.quantize[slot(GgmlType::Q8_K)] = quantize_q8_K;
  t.quantize[slot(GgmlType::F16)] = quantize_f16;
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
  t.rows_dot[slot(GgmlType::Q5_0)] = rows_dot_q5_0;
  t.chunked_rows_dot[slot(GgmlType::Q5_0)] = chunked_rows_dot_q5_0;
  t.vec_dot[slot(GgmlType::Q5_1)] = dot_q5_1;
  t.vec_dot[slot(GgmlType::Q4_K)] = dot_k4<false, block_q4_K>;
  t.vec_dot[slot(GgmlType::Q5_K)] = dot_k4<true, block_q5_K>;
  t.vec_dot[slot(GgmlType::Q6_K)] = dot_q6_K;
  t.vec_dot[slot(GgmlType::Q2_K)] = neon_lowbit::dot_q2_K;
  t.vec_dot[slot(GgmlType::Q3_K)] = neon_lowbit::dot_q3_K;
  t.vec_dot[slot(GgmlType::IQ4_NL)] = neon_lowbit::dot_iq4_nl;
  t.vec_dot[slot(GgmlType::IQ4_XS)] = neon_lowbit::dot_iq4_xs;
}

}  // namespace clusterctl::kernels::detail
