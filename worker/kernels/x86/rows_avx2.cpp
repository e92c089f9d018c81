// AVX2 + FMA + F16C row kernels (Layout::Rows) and activation quantisers: integer dot products
// with maddubs (unsigned x signed bytes), as ggml does, for every computable type. Compiled
// with -mavx2 -mfma -mf16c only (the _avx2 suffix); the dispatcher calls fill_rows_avx2 after
// checking the CPU.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "worker/kernels/blocks.h"
#include "worker/kernels/half.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/x86/avx2_helpers.h"
#include "worker/kernels/x86/rows_iq.h"
#include "worker/kernels/x86/rows_kquant.h"
#include "worker/kernels/x86/rows_lowbit.h"
#include "worker/kernels/x86/rows_q_0.h"

namespace clusterctl::kernels::detail {
namespace {

using namespace x86;

// ---- activation quantisation ----------------------------------------------------------------

// Rounds v*id to nearest-even int32 and packs 32 of them (4 vectors) into 32 bytes at out.
inline void pack_q8(__m256 v0, __m256 v1, __m256 v2, __m256 v3, __m256 id, int8_t* out, __m256i* ints_sum) {
  constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, id), kRound));
  const __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, id), kRound));
  const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, id), kRound));
  const __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, id), kRound));
  if (ints_sum) *ints_sum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
  const __m256i fixed = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), fixed);
}

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float max_abs32(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
  __m256 m = _mm256_max_ps(_mm256_max_ps(abs_ps(v0), abs_ps(v1)), _mm256_max_ps(abs_ps(v2), abs_ps(v3)));
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

void quantize_q8_0(const float* x, void* out, int64_t n) {
  auto* y = static_cast<block_q8_0*>(out);
  for (int64_t b = 0; b < n / QK8_0; ++b, x += QK8_0) {
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16),
                 v3 = _mm256_loadu_ps(x + 24);
    const float amax = max_abs32(v0, v1, v2, v3);
    y[b].d = float_to_half(amax / 127.f);
    pack_q8(v0, v1, v2, v3, _mm256_set1_ps(amax != 0 ? 127.f / amax : 0.f), y[b].qs, nullptr);
  }
}

void quantize_q8_1(const float* x, void* out, int64_t n) {
  auto* y = static_cast<block_q8_1*>(out);
  for (int64_t b = 0; b < n / QK8_1; ++b, x += QK8_1) {
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16),
                 v3 = _mm256_loadu_ps(x + 24);
    const float amax = max_abs32(v0, v1, v2, v3);
    const float d = amax / 127.f;
    __m256i sum;
    pack_q8(v0, v1, v2, v3, _mm256_set1_ps(amax != 0 ? 127.f / amax : 0.f), y[b].qs, &sum);
    y[b].d = float_to_half(d);
    y[b].s = float_to_half(static_cast<float>(hsum_i32(sum)) * d);
  }
}

void quantize_q8_K(const float* x, void* out, int64_t n) {
  auto* y = static_cast<block_q8_K*>(out);
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < QK_K; j += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + j)));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    const float amax = _mm_cvtss_f32(s);
    if (amax == 0) {
      std::memset(&y[b], 0, sizeof(block_q8_K));
      continue;
    }
    // The signed value of the first element of largest magnitude, as the reference picks it.
    float max = amax;
    const __m256 vamax = _mm256_set1_ps(amax);
    for (int j = 0; j < QK_K; j += 8) {
      const int mask = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + j)), vamax, _CMP_EQ_OQ));
      if (mask) {
        max = x[j + __builtin_ctz(static_cast<unsigned>(mask))];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m256 id = _mm256_set1_ps(iscale);
    for (int j = 0; j < QK_K; j += 32) {
      __m256i sum;
      const float* p = x + j;
      pack_q8(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _mm256_loadu_ps(p + 16), _mm256_loadu_ps(p + 24), id,
              y[b].qs + j, &sum);
      (void)sum;
    }
    for (int g = 0; g < QK_K / 16; ++g) {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(y[b].qs + 16 * g));
      const __m256i q16 = _mm256_cvtepi8_epi16(q);
      y[b].bsums[g] = static_cast<int16_t>(hsum_i32(_mm256_madd_epi16(q16, _mm256_set1_epi16(1))));
    }
    y[b].d = 1 / iscale;
  }
}

void quantize_f16(const float* x, void* out, int64_t n) {
  auto* y = static_cast<uint16_t*>(out);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = float_to_half(x[i]);
}

// ---- vector updates (F16C + FMA, the scalar ones' bits) ------------------------------------

inline __m128i to_half8(__m256 v) { return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT); }
inline __m256 from_half8(const fp16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

void f16_scale(int64_t n, fp16_t* y, float s) {
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), to_half8(_mm256_mul_ps(from_half8(y + i), vs)));
  for (; i < n; ++i) y[i] = float_to_half(half_to_float(y[i]) * s);
}

void f16_mad(int64_t n, fp16_t* y, const fp16_t* x, float v) {
  const __m256 vv = _mm256_set1_ps(v);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     to_half8(_mm256_fmadd_ps(from_half8(x + i), vv, from_half8(y + i))));
  for (; i < n; ++i) y[i] = float_to_half(std::fma(half_to_float(x[i]), v, half_to_float(y[i])));
}

void f16_to_f32(int64_t n, const fp16_t* x, float* y) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, from_half8(x + i));
  for (; i < n; ++i) y[i] = half_to_float(x[i]);
}

void f32_mad(int64_t n, float* y, const float* x, float v) {
  const __m256 vv = _mm256_set1_ps(v);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), vv, _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] = std::fma(x[i], v, y[i]);
}

// Four vectors of columns per pass over a: independent fma chains, one per lane.
void f32_column_dots(int64_t k, int64_t n, const float* bt, int64_t ld, const float* a, float* c) {
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), c2 = _mm256_setzero_ps(), c3 = _mm256_setzero_ps();
    for (int64_t i = 0; i < k; ++i) {
      const float* b = bt + i * ld + j;
      const __m256 ai = _mm256_set1_ps(a[i]);
      c0 = _mm256_fmadd_ps(ai, _mm256_loadu_ps(b), c0);
      c1 = _mm256_fmadd_ps(ai, _mm256_loadu_ps(b + 8), c1);
      c2 = _mm256_fmadd_ps(ai, _mm256_loadu_ps(b + 16), c2);
      c3 = _mm256_fmadd_ps(ai, _mm256_loadu_ps(b + 24), c3);
    }
    _mm256_storeu_ps(c + j, c0);
    _mm256_storeu_ps(c + j + 8, c1);
    _mm256_storeu_ps(c + j + 16, c2);
    _mm256_storeu_ps(c + j + 24, c3);
  }
  for (; j + 8 <= n; j += 8) {
    __m256 c0 = _mm256_setzero_ps();
    for (int64_t i = 0; i < k; ++i) c0 = _mm256_fmadd_ps(_mm256_set1_ps(a[i]), _mm256_loadu_ps(bt + i * ld + j), c0);
    _mm256_storeu_ps(c + j, c0);
  }
  for (; j < n; ++j) {
    float sum = 0.0f;
    for (int64_t i = 0; i < k; ++i) sum = std::fma(a[i], bt[i * ld + j], sum);
    c[j] = sum;
  }
}

// ---- float dot products ---------------------------------------------------------------------

inline __m256 load_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load_bf16(const uint16_t* p) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}

float dot_f32(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const float*>(w);
  const auto* b = static_cast<const float*>(x);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

template <__m256 (*Load)(const uint16_t*), float (*Scalar)(uint16_t)>
float dot_half(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const uint16_t*>(x);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(Load(a + i), Load(b + i), acc0);
    acc1 = _mm256_fmadd_ps(Load(a + i + 8), Load(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(Load(a + i + 16), Load(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(Load(a + i + 24), Load(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(Load(a + i), Load(b + i), acc0);
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum += Scalar(a[i]) * Scalar(b[i]);
  return sum;
}

// ---- 32-element block quants ----------------------------------------------------------------

// Runs block(i) -> (scale, int32 lane sums) over nb blocks with four independent accumulators:
// one accumulator makes every block wait for the previous fma (4 cycles on Zen 4), which
// bound these kernels at about one block per 5 cycles.
template <typename Block>
inline float sum_blocks(int64_t nb, Block&& block) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) {
    acc0 = block(i, acc0);
    acc1 = block(i + 1, acc1);
    acc2 = block(i + 2, acc2);
    acc3 = block(i + 3, acc3);
  }
  for (; i < nb; ++i) acc0 = block(i, acc0);
  return hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

float dot_q8_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q8_0*>(w);
  const auto* b = static_cast<const block_q8_0*>(x);
  return sum_blocks(n / QK8_0, [&](int64_t i, __m256 acc) {
    const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
    const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs));
    const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8i8(qa, qb)), acc);
  });
}

float dot_q4_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q4_0*>(w);
  const auto* b = static_cast<const block_q8_0*>(x);
  const __m256i eight = _mm256_set1_epi8(8);
  return sum_blocks(n / QK4_0, [&](int64_t i, __m256 acc) {
    const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
    const __m256i qa = _mm256_sub_epi8(unpack_nibbles(a[i].qs), eight);
    const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8i8(qa, qb)), acc);
  });
}

float dot_q4_1(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q4_1*>(w);
  const auto* b = static_cast<const block_q8_1*>(x);
  float mins = 0;
  for (int64_t i = 0; i < n / QK4_1; ++i) mins += h2f(a[i].m) * h2f(b[i].s);
  return mins + sum_blocks(n / QK4_1, [&](int64_t i, __m256 acc) {
           const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
           const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
           return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8i8(unpack_nibbles(a[i].qs), qb)), acc);
         });
}

float dot_q5_0(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q5_0*>(w);
  const auto* b = static_cast<const block_q8_0*>(x);
  return sum_blocks(n / QK5_0, [&](int64_t i, __m256 acc) {
    const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
    // nibble | 0xf0 where the fifth bit is clear equals (nibble | bit<<4) - 16 as a signed byte.
    const __m256i high = _mm256_andnot_si256(spread_bits(a[i].qh), _mm256_set1_epi8(static_cast<char>(0xf0)));
    const __m256i qa = _mm256_or_si256(unpack_nibbles(a[i].qs), high);
    const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8i8(qa, qb)), acc);
  });
}

float dot_q5_1(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const block_q5_1*>(w);
  const auto* b = static_cast<const block_q8_1*>(x);
  float mins = 0;
  for (int64_t i = 0; i < n / QK5_1; ++i) mins += h2f(a[i].m) * h2f(b[i].s);
  return mins + sum_blocks(n / QK5_1, [&](int64_t i, __m256 acc) {
           const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
           const __m256i high = _mm256_and_si256(spread_bits(a[i].qh), _mm256_set1_epi8(0x10));
           const __m256i qa = _mm256_or_si256(unpack_nibbles(a[i].qs), high);
           const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
           return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8i8(qa, qb)), acc);
         });
}

}  // namespace

void fill_rows_avx2(KernelTable& t) {
  t.f16_scale = f16_scale;
  t.f16_mad = f16_mad;
  t.f16_to_f32 = f16_to_f32;
  t.f32_mad = f32_mad;
  t.f32_column_dots = f32_column_dots;
  t.vec_dot[slot(GgmlType::Q2_K)] = dot_q2_K_avx2;
  t.vec_dot[slot(GgmlType::Q3_K)] = dot_q3_K_avx2;
  t.vec_dot[slot(GgmlType::IQ4_NL)] = dot_iq4_nl_avx2;
  t.vec_dot[slot(GgmlType::IQ4_XS)] = dot_iq4_xs_avx2;
  t.quantize[slot(GgmlType::Q8_0)] = quantize_q8_0;
  t.quantize[slot(GgmlType::Q8_1)] = quantize_q8_1;
  t.quantize[slot(GgmlType::Q8_K)] = quantize_q8_K;
  t.quantize[slot(GgmlType::F16)] = quantize_f16;
  t.vec_dot[slot(GgmlType::F32)] = dot_f32;
  t.vec_dot[slot(GgmlType::F16)] = dot_half<load_f16, h2f>;
  t.vec_dot[slot(GgmlType::BF16)] = dot_half<load_bf16, bf16_to_float>;
  t.vec_dots[slot(GgmlType::F32)] = dots_row_by_row<dot_f32>;
  t.vec_dots[slot(GgmlType::F16)] = dots_row_by_row<dot_half<load_f16, h2f>>;
  t.vec_dots[slot(GgmlType::BF16)] = dots_row_by_row<dot_half<load_bf16, bf16_to_float>>;
  t.vec_dot[slot(GgmlType::Q8_0)] = dot_q8_0;
  t.vec_dot[slot(GgmlType::Q4_0)] = dot_q4_0;
  t.rows_dot[slot(GgmlType::Q4_0)] = rows_dot_q_0<Q4_0Bytes, dot_u8i8>;
  t.chunked_rows_dot[slot(GgmlType::Q4_0)] = chunked_rows_dot_q_0<Q4_0Bytes, dot_u8i8>;
  t.rows_dot[slot(GgmlType::Q5_0)] = rows_dot_q_0<Q5_0Bytes, dot_u8i8>;
  t.chunked_rows_dot[slot(GgmlType::Q5_0)] = chunked_rows_dot_q_0<Q5_0Bytes, dot_u8i8>;
  t.vec_dot[slot(GgmlType::Q4_1)] = dot_q4_1;
  t.vec_dot[slot(GgmlType::Q5_0)] = dot_q5_0;
  t.vec_dot[slot(GgmlType::Q5_1)] = dot_q5_1;
  install_kquant_dots<madd_add>(t);
  install_iq_dots<madd_add>(t);
}

}  // namespace clusterctl::kernels::detail
