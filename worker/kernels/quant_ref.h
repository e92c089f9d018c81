#pragma once
// Decoders of GGUF block fields that the reference quantisers, the row kernels and the packers
// all read: one copy of each.
#include <cstdint>
#include <cstring>

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

// ---- the 1-3-bit IQ formats (blocks.h) ----

// IQ2_S grid index of group l (0..3) of 32-element sub-block ib: 8 bits in qs, 2 in qh[ib].
inline int iq2s_index(const uint8_t* qs, const uint8_t* qh, int ib, int l) {
  return qs[4 * ib + l] | (((qh[ib] >> (2 * l)) & 3) << 8);
}

// IQ3_S grid index of 4-element group k (0..7) of sub-block ib: 8 bits in qs, bit k of qh[ib].
inline int iq3s_index(const uint8_t* qs, const uint8_t* qh, int ib, int k) {
  return qs[8 * ib + k] | (((qh[ib] >> k) & 1) << 8);
}

// IQ1_S grid index of group l (0..3) of sub-block ib: 8 bits in qs, 3 in bits 3l.. of qh[ib].
inline int iq1s_index(const uint8_t* qs, const uint16_t* qh, int ib, int l) {
  return qs[4 * ib + l] | (((qh[ib] >> (3 * l)) & 7) << 8);
}

// IQ1_M: group l (0..3) of sub-block ib takes the nibble l % 2 of qh[2 ib + l / 2]: three index
// bits, and the delta's sign in the fourth.
inline int iq1m_index(const uint8_t* qs, const uint8_t* qh, int ib, int l) {
  return qs[4 * ib + l] | (((qh[2 * ib + l / 2] >> (4 * (l % 2))) & 7) << 8);
}
inline bool iq1m_delta_negative(const uint8_t* qh, int ib, int l) { return (qh[2 * ib + l / 2] >> (4 * (l % 2))) & 8; }

// IQ1_M's fp16 super-block scale, kept in the top nibbles of its four uint16 scale words.
inline uint16_t iq1m_scale_bits(const uint8_t* scales) {
  uint16_t sc[4];
  std::memcpy(sc, scales, sizeof sc);
  return static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
}

// IQ1_M's 3-bit scale of 16-element half h (0..15): bits 3 (h % 4) of uint16 word h / 4.
inline int iq1m_subscale(const uint8_t* scales, int h) {
  uint16_t w;
  std::memcpy(&w, scales + 2 * (h / 4), sizeof w);
  return (w >> (3 * (h % 4))) & 7;
}

}  // namespace clusterctl::kernels::detail
