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

}  // namespace clusterctl::kernels::detail
