#pragma once
// Inline AVX2 building blocks shared by the AVX2 and AVX-512 sources (both are compiled with
// at least -mavx2 -mfma -mf16c). Only include from files compiled with those flags.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace clusterctl::kernels::detail::x86 {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hsum(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// 32 nibbles -> 32 bytes: the 16 low nibbles first, then the 16 high nibbles (ggml's order).
// (A broadcast load and one variable shift of the upper half: three instructions, not four.)
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

// 32 bits -> 32 bytes of 0xff (bit set) or 0x00.
inline __m256i spread_bits(const uint8_t* bits4) {
  uint32_t x;
  std::memcpy(&x, bits4, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x)), shuf);
  bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

// Sum of products of unsigned bytes a and signed bytes b, per 32-bit lane.
inline __m256i dot_u8i8(__m256i a, __m256i b) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
}

// acc + dot_u8i8(a, b): the AVX2 form of VNNI's dpbusd.
inline __m256i dot_acc_u8i8(__m256i acc, __m256i a, __m256i b) { return _mm256_add_epi32(acc, dot_u8i8(a, b)); }

// Same for two signed operands: move x's sign onto y so maddubs sees |x| (unsigned).
inline __m256i dot_i8i8(__m256i x, __m256i y) { return dot_u8i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)); }

// The 8 scales and 8 mins (6 bits each) of a Q4_K/Q5_K block, unpacked to bytes:
// bytes 0..7 are the scales, 8..15 the mins.
inline __m128i k4_scales_mins(const uint8_t* scales12) {
  constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
  uint32_t u[4];
  std::memcpy(u, scales12, 12);
  u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
  const uint32_t mins_lo = u[1] & kmask1;
  u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
  u[2] = mins_lo;
  u[0] &= kmask1;
  return _mm_set_epi32(static_cast<int>(u[3]), static_cast<int>(u[2]), static_cast<int>(u[1]), static_cast<int>(u[0]));
}

// A 256-bit vector of int16 scale k of the 16 int16 scales in `scales16` (both lanes same).
inline __m256i broadcast_scale(__m256i scales16, int k) {
  const short pattern = static_cast<short>(((2 * k + 1) << 8) | (2 * k));
  return _mm256_shuffle_epi8(scales16, _mm256_set1_epi16(pattern));
}

}  // namespace clusterctl::kernels::detail::x86
