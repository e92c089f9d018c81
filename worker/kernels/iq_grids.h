#pragma once
// The lattice tables of the 1-3-bit IQ formats (IQ1_S/IQ1_M, IQ2_XXS/IQ2_XS/IQ2_S, IQ3_XXS/IQ3_S):
// a block stores indices into these grids of 8 (IQ1, IQ2) or 4 (IQ3) magnitudes, so the tables
// are part of the file format and must equal ggml's (iq2xxs_grid ... iq1s_grid of ggml-common.h)
// entry for entry. Each entry's bytes are element 0 (lowest byte) to element 7 (or 3).
#include <array>
#include <cstdint>

namespace clusterctl::kernels::detail {

extern const std::array<uint64_t, 256> kIq2xxsGrid;  // bytes from {8, 25, 43}
extern const std::array<uint64_t, 512> kIq2xsGrid;   // bytes from {8, 25, 43}
extern const std::array<uint64_t, 1024> kIq2sGrid;   // bytes from {8, 25, 43}
extern const std::array<uint32_t, 256> kIq3xxsGrid;  // bytes from {4, 12, 20, ..., 52, 62}
extern const std::array<uint32_t, 512> kIq3sGrid;    // bytes from {1, 3, 5, ..., 15}
extern const std::array<uint64_t, 2048> kIq1sGrid;   // signed bytes from {-1, 0, 1}

// IQ2_XXS, IQ2_XS and IQ3_XXS store 7 sign bits per 8 elements; the eighth makes the number of
// negative elements even (ggml's ksigns_iq2xs): bit j set = element j negative.
constexpr uint8_t iq_signs_of(unsigned seven_bits) {
  unsigned parity = 0;
  for (unsigned b = seven_bits; b; b >>= 1) parity ^= b & 1u;
  return static_cast<uint8_t>((seven_bits & 127u) | (parity << 7));
}
// The same 8 signs as bytes (+1 or -1, element 0 lowest), for SIMD sign application.
extern const std::array<uint64_t, 128> kIqSignBytes;

// IQ1_S / IQ1_M: each group of 8 is offset by +-kIq1Delta (times the sub-block scale).
constexpr float kIq1Delta = 0.125f;
// IQ1_M's grid with its delta folded in, for one byte dot per 8 elements: entry (grid index |
// delta-negative bit << 11) holds 8 * the grid byte + (-1 or +1), so a dot with it is 8 times the
// grid dot plus the signed activation sum (kIq1Delta = 1/8).
extern const std::array<uint64_t, 4096> kIq1mDeltaGrid;  // signed bytes from {-9, -7, -1, 1, 7, 9}

}  // namespace clusterctl::kernels::detail
