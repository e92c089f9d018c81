#pragma once
// Quantisation block layouts, bit-identical to ggml's (GGUF files store these bytes).
#include <cstdint>

namespace clusterctl::kernels {

using fp16_t = uint16_t;  // IEEE half, stored as bits
using bf16_t = uint16_t;  // bfloat16, stored as bits

constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32;
constexpr int QK_K = 256;
constexpr int K_SCALE_SIZE = 12;
constexpr int QK4_NL = 32;

// IQ4_NL / IQ4_XS: 4-bit indices into this non-linear table of 16 levels (ggml's kvalues_iq4nl).
inline constexpr int8_t kValuesIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

struct block_q4_0 {
  fp16_t d;
  uint8_t qs[QK4_0 / 2];
};
struct block_q4_1 {
  fp16_t d;
  fp16_t m;
  uint8_t qs[QK4_1 / 2];
};
struct block_q5_0 {
  fp16_t d;
  uint8_t qh[4];
  uint8_t qs[QK5_0 / 2];
};
struct block_q5_1 {
  fp16_t d;
  fp16_t m;
  uint8_t qh[4];
  uint8_t qs[QK5_1 / 2];
};
struct block_q8_0 {
  fp16_t d;
  int8_t qs[QK8_0];
};
struct block_q8_1 {
  fp16_t d;
  fp16_t s;
  int8_t qs[QK8_1];
};  // s = d * sum(qs)
// Q2_K: 16 sub-blocks of 16; scales[j] = 4-bit scale | 4-bit min << 4; 2-bit quants, element
// l + 32 * s of each 128-element half in bits 2s..2s+1 of qs[half * 32 + l].
struct block_q2_K {
  uint8_t scales[QK_K / 16];
  uint8_t qs[QK_K / 4];
  fp16_t d;
  fp16_t dmin;
};
// Q3_K: 2 low bits as Q2_K, the third (set: +0, clear: -4) in hmask; 16 6-bit scales (-32) in 12 bytes.
struct block_q3_K {
  uint8_t hmask[QK_K / 8];
  uint8_t qs[QK_K / 4];
  uint8_t scales[12];
  fp16_t d;
};
struct block_iq4_nl {
  fp16_t d;
  uint8_t qs[QK4_NL / 2];
};
struct block_iq4_xs {
  fp16_t d;
  uint16_t scales_h;
  uint8_t scales_l[QK_K / 64];
  uint8_t qs[QK_K / 2];
};
// The 1-3-bit IQ formats: groups of 8 (IQ1, IQ2) or 4 (IQ3) elements stored as an index into a
// lattice table (iq_grids.h) plus, except IQ1, 8 sign bits per group; 4-bit or 3-bit sub-block
// scales s give the group scale d * (2s + 1) (times a per-type constant). All indices are
// full-width bit fields into tables of exactly 2^bits entries, so no index is out of range.
// IQ2_XXS: per 32 elements two uint32: four 8-bit grid indices, then four 7-bit sign sets and a
// 4-bit scale in the top bits.
struct block_iq2_xxs {
  fp16_t d;
  uint16_t qs[QK_K / 8];
};
// IQ2_XS: per 8 elements a uint16: 9-bit grid index | 7 sign bits << 9; a 4-bit scale per 16.
struct block_iq2_xs {
  fp16_t d;
  uint16_t qs[QK_K / 8];
  uint8_t scales[QK_K / 32];
};
// IQ2_S: per 8 elements a 10-bit grid index (8 bits in qs, 2 in qh) and 8 explicit sign bits (the
// second half of qs); a 4-bit scale per 16.
struct block_iq2_s {
  fp16_t d;
  uint8_t qs[QK_K / 4];
  uint8_t qh[QK_K / 32];
  uint8_t scales[QK_K / 32];
};
// IQ3_XXS: per 4 elements an 8-bit grid index; per 32 a uint32 of four 7-bit sign sets and a
// 4-bit scale (the last 32 bytes of qs).
struct block_iq3_xxs {
  fp16_t d;
  uint8_t qs[3 * QK_K / 8];
};
// IQ3_S: per 4 elements a 9-bit grid index (8 bits in qs, 1 in qh), explicit signs, a 4-bit
// scale per 32.
struct block_iq3_s {
  fp16_t d;
  uint8_t qs[QK_K / 4];
  uint8_t qh[QK_K / 32];
  uint8_t signs[QK_K / 8];
  uint8_t scales[QK_K / 64];
};
// IQ1_S: per 8 elements an 11-bit index into the {-1, 0, 1} grid (8 bits in qs, 3 in qh); per 32
// a uint16 qh holding those high bits, a 3-bit scale (bits 12-14) and the delta's sign (bit 15).
struct block_iq1_s {
  fp16_t d;
  uint8_t qs[QK_K / 8];
  uint16_t qh[QK_K / 32];
};
// IQ1_M: as IQ1_S with a delta sign per 8 elements (bit 3 of each qh nibble, the other three
// are index bits) and 3-bit scales per 16; the fp16 super-block scale has no field of its own
// but sits in the top nibbles of the four uint16 words of `scales` (iq1m_scale).
struct block_iq1_m {
  uint8_t qs[QK_K / 8];
  uint8_t qh[QK_K / 16];
  uint8_t scales[QK_K / 32];
};
struct block_q4_K {
  fp16_t d;
  fp16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];
};
struct block_q5_K {
  fp16_t d;
  fp16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
struct block_q6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  fp16_t d;
};
struct block_q8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
};

static_assert(sizeof(block_q4_0) == 18);
static_assert(sizeof(block_q4_1) == 20);
static_assert(sizeof(block_q5_0) == 22);
static_assert(sizeof(block_q5_1) == 24);
static_assert(sizeof(block_q8_0) == 34);
static_assert(sizeof(block_q8_1) == 36);
static_assert(sizeof(block_q2_K) == 84);
static_assert(sizeof(block_q3_K) == 110);
static_assert(sizeof(block_iq4_nl) == 18);
static_assert(sizeof(block_iq4_xs) == 136);
static_assert(sizeof(block_iq2_xxs) == 66);
static_assert(sizeof(block_iq2_xs) == 74);
static_assert(sizeof(block_iq2_s) == 82);
static_assert(sizeof(block_iq3_xxs) == 98);
static_assert(sizeof(block_iq3_s) == 110);
static_assert(sizeof(block_iq1_s) == 50);
static_assert(sizeof(block_iq1_m) == 56);
static_assert(sizeof(block_q4_K) == 144);
static_assert(sizeof(block_q5_K) == 176);
static_assert(sizeof(block_q6_K) == 210);
static_assert(sizeof(block_q8_K) == 292);

}  // namespace clusterctl::kernels
