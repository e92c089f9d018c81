#pragma once
// Decoders of GGUF block fields that the reference quantisers, the row kernels and the packers
// all read: one copy of each.
#include <cstdint>

namespace clusterctl::kernels::detail {

// The eight 6-bit (scale, min) pairs of a Q4_K/Q5_K block in 12 bytes: pairs 0-3 sit in the
// low six bits of bytes 0-3 / 4-7; pairs 4-7 keep their low nibbles in bytes 8-11 and their
// top two bits in the spare high bits of bytes 0-7.
struct K4ScaleMin {
  uint8_t scale, min;
};

inline K4ScaleMin k4_scale_min(int j, const uint8_t* q) {
  if (j < 4) return {static_cast<uint8_t>(q[j] & 63), static_cast<uint8_t>(q[j + 4] & 63)};
  return {static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4)),
          static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4))};
}

// The sixteen 6-bit sub-block scales of a Q3_K block (12 bytes), biased by 32: scale j keeps its
// low nibble in byte j (j < 8, low nibble) or byte j - 8 (high nibble), and its top two bits in
// bits 2 * (j / 4) of byte 8 + j % 4. Returns the signed scale (-32..31).
inline int q3k_scale(int j, const uint8_t* s) {
  const int lo = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
  const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

// The eight 6-bit sub-block scales of an IQ4_XS block, biased by 32 (-32..31).
inline int iq4xs_scale(int ib, const uint8_t* scales_l, uint16_t scales_h) {
  return (((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) | (((scales_h >> (2 * ib)) & 3) << 4)) - 32;
}

}  // namespace clusterctl::kernels::detail
