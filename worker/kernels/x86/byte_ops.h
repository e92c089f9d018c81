#pragma once
// Byte-lane operations on 256-bit (AVX2) and 512-bit (AVX-512 BW) registers, so one template
// unpacks a packed type for both widths.
#include <immintrin.h>

namespace clusterctl::kernels::detail::x86 {

struct Ops256 {
  static __m256i set1(char c) { return _mm256_set1_epi8(c); }
  static __m256i and_(__m256i a, __m256i b) { return _mm256_and_si256(a, b); }
  static __m256i or_(__m256i a, __m256i b) { return _mm256_or_si256(a, b); }
  static __m256i sub(__m256i a, __m256i b) { return _mm256_sub_epi8(a, b); }
  static __m256i slli4(__m256i a) { return _mm256_slli_epi16(a, 4); }
  static __m256i slli2(__m256i a) { return _mm256_slli_epi16(a, 2); }
  static __m256i srli4(__m256i a) { return _mm256_srli_epi16(a, 4); }
  static __m256i srli2(__m256i a) { return _mm256_srli_epi16(a, 2); }
  template <int N>
  static __m256i shl(__m256i a) {
    return _mm256_slli_epi16(a, N);
  }
  template <int N>
  static __m256i shr(__m256i a) {
    return _mm256_srli_epi16(a, N);
  }
};

#if defined(__AVX512BW__)
struct Ops512 {
  static __m512i set1(char c) { return _mm512_set1_epi8(c); }
  static __m512i and_(__m512i a, __m512i b) { return _mm512_and_si512(a, b); }
  static __m512i or_(__m512i a, __m512i b) { return _mm512_or_si512(a, b); }
  static __m512i sub(__m512i a, __m512i b) { return _mm512_sub_epi8(a, b); }
  static __m512i slli4(__m512i a) { return _mm512_slli_epi16(a, 4); }
  static __m512i slli2(__m512i a) { return _mm512_slli_epi16(a, 2); }
  static __m512i srli4(__m512i a) { return _mm512_srli_epi16(a, 4); }
  static __m512i srli2(__m512i a) { return _mm512_srli_epi16(a, 2); }
  template <int N>
  static __m512i shl(__m512i a) {
    return _mm512_slli_epi16(a, N);
  }
  template <int N>
  static __m512i shr(__m512i a) {
    return _mm512_srli_epi16(a, N);
  }
};
#endif

}  // namespace clusterctl::kernels::detail::x86
