#pragma once
// Layout::Packed8: weight rows repacked 8 at a time so a decode reads one sequential run of memory
// instead of 8 interleaved row streams. Each packable type is one PackedFormat (packed.cpp): its
// block, its packer, what a token needs beside its quants, and its scalar kernels; the ISAs add
// faster kernels to their tables (x86/packed_*.cpp, arm/packed_neon.cpp).
//
// Per group of 8 rows, per block of the type, the 8 rows' fp16 scales, then chunks of 32 bytes
// where chunk j holds 4 bytes of each row (row r at bytes 4r..4r+3): one 32-bit lane per row,
// ready for 4-byte integer dot products.
//   Q4_0 (144 bytes): 4 chunks; chunk j holds nibble bytes 4j..4j+3 (elements 4j.. and 16+4j..),
//     stored +8 as in GGUF. Each row's sum is the Rows layout's decode sum bit for bit on x86.
//   IQ4_NL (144 bytes): Q4_0's layout (its GGUF block is Q4_0's bytes); the kernels map each
//     nibble through kValuesIq4nl: signed (AVX2), or +128 unsigned (scalar, VNNI), which xoff
//     (128 * the sum of the token's quants) takes off again.
//   Q8_0 (272 bytes): 8 chunks; chunk j holds elements 4j..4j+3, stored +128 (unsigned), which
//     the kernels take off with 128 * the sum of the token's quants.
//   Q4_K (1248 bytes per 256 columns): the 8 rows' fp16 d and dmin (32), the 6-bit sub-block
//     scales as bytes [sub-block][row] (64), the mins as int16 pairs [sub-block pair][row] (128),
//     then 32 chunks: chunk (p, j) holds nibble bytes 32p+4j..+3 of each row (low nibbles:
//     sub-block 2p, high nibbles: 2p+1). The integer sums and the float steps are the packed
//     kernels' own (the Rows layout sums in another order).
//   Q5_K (1504 bytes per 256 columns): Q4_K's, but each sub-block pair's 8 nibble chunks are
//     followed by 2 chunks of their fifth bits (q5_K_fifth_chunk), so a super-block stays one
//     sequential stream (bits at its end decoded at 40 % of the speed).
//   Q2_K (672 bytes per 256 columns, as in GGUF): the 8 rows' fp16 d (16) and dmin (16), the
//     scale-and-min bytes (scale | min << 4, GGUF's) as [sub-block][row] (128), then 16 chunks:
//     byte m of row r in chunk c holds at bits 2s..2s+1 element 64s + 4c + m (so plane s of
//     chunk c is the 4-byte piece 16s + c, in sub-block 4s + c / 4). xoff: the token's 16
//     sub-block sums as 8 int16 pairs, against the mins.
//   Q3_K (912 bytes per 256 columns): the 8 rows' fp16 d (16), the 16 signed 6-bit scales as
//     int8 [sub-block][row] (128), then 4 runs of 192 bytes: run q holds 4 chunks of the 2 low
//     bits in Q2_K's arrangement (chunk k of run q is Q2_K's chunk 4q + k: plane s is piece
//     16s + 4q + k, in sub-block 4s + q), then 2 chunks of their third bits (bit 4 * (k % 2) + s
//     of high chunk k / 2 is plane s of chunk k's). The kernels take q = low | third << 2
//     (0..7, unsigned) and put the -4 in xoff: per sub-block j, -4 * the token's sum of it, in
//     the low 16 bits of an int32 (the kernels' sub-block sums start from it and fit int16).
//   Q6_K (1728 bytes per 256 columns): the 8 rows' fp16 d (16), the 16 int8 scales as bytes
//     [sub-block][row] (128), each row's constant 128 * sum(scale * sub-block weight sum) (32),
//     16 bytes of padding, then the weights (q - 32, signed) as 4-bit and 2-bit planes in row
//     lanes, in 16 runs of 96 bytes: run c holds the low nibbles of pieces c (low) and c + 32
//     (high), of pieces c + 16 and c + 48, and their high bits (bits 0-1: c, 2-3: c + 16, 4-5:
//     c + 32, 6-7: c + 48), where piece k is elements 4k..4k+3. A super-block is thus read as
//     one sequential stream (spread over three, decoding ran at a fifth of the speed). The
//     tokens' quants are stored +128 (unsigned), so the dot is VNNI's unsigned x signed; the
//     constant takes the +128 off.
//   IQ4_XS (1104 bytes per 256 columns; packed_iq4_xs.cpp): the 8 rows' fp16 d (16), the 8
//     sub-block scales (6-bit, less 32) as int8 [sub-block][row] (64), then 32 chunks: chunk
//     (ib, j) holds nibble bytes 16ib+4j..+3 of each row (low nibbles: elements 32ib+4j..,
//     high: 32ib+16+4j..). The kernels map nibbles through kValuesIq4nl as IQ4_NL's do; xoff:
//     128 * each 32-element sub-block's sum of the token's quants.
#include <cstddef>
#include <cstdint>
#include <string>

#include "worker/kernels/kernel_table.h"

namespace clusterctl::kernels::detail {

// Bytes of one 32-column block of a group of 8 rows, and the storage offset of the quants.
constexpr size_t kPackedQ4_0BlockBytes = kPackRows * (2 + 16);
constexpr size_t kPackedQ8_0BlockBytes = kPackRows * (2 + 32);
constexpr int32_t kPackedQ4_0Offset = 8;
constexpr int32_t kPackedQ8_0Offset = 128;
constexpr int32_t kPackedIq4NlOffset = 128;  // the table's values stored +128 in the kernels that take them unsigned
// Q4_K (against Q8_K tokens): per 256-column super-block of a group, 1248 bytes.
constexpr size_t kPackedQ4_KScales = 32, kPackedQ4_KMins = 96, kPackedQ4_KQuants = 224;
constexpr size_t kPackedQ4_KBlockBytes = 1248;
constexpr int kPackedQ4_KXoff = 4;  // xoff int32s per super-block: the min pairs' activation sums
// Q5_K: Q4_K's fields, then per sub-block pair p its 8 nibble chunks followed by 2 chunks of
// their fifth bits, so a super-block stays one sequential stream: byte m of row r in fifth-bit
// chunk h holds, for nibble chunk j = 4h + b (b = 0..3), bit 2b: the fifth bit of j's low-nibble
// element m, bit 2b + 1: of its high-nibble element m.
constexpr size_t kPackedQ5_KBlockBytes = kPackedQ4_KBlockBytes + 256;
template <bool Fifth>
constexpr size_t k4_quant_chunk(int p, int j) {
  return kPackedQ4_KQuants + (Fifth ? 320 : 256) * p + 32 * j;
}
constexpr size_t q5_K_fifth_chunk(int p, int h) { return kPackedQ4_KQuants + 320 * p + 256 + 32 * h; }
// Q2_K (against Q8_K): per 256-column super-block of a group, 672 bytes.
constexpr size_t kPackedQ2_KScales = 32, kPackedQ2_KQuants = 160, kPackedQ2_KBlockBytes = 672;
constexpr int kPackedQ2_KXoff = 8;  // xoff int32s per super-block: the sub-block sums as int16 pairs
// Q3_K (against Q8_K): per 256-column super-block of a group, 912 bytes.
constexpr size_t kPackedQ3_KScales = 16, kPackedQ3_KQuants = 144, kPackedQ3_KBlockBytes = 912;
constexpr int kPackedQ3_KXoff = 16;  // xoff int32s per super-block: -4 * the sub-block sums (low 16 bits)
constexpr size_t q3_K_low_chunk(int q, int k) { return kPackedQ3_KQuants + 192 * q + 32 * k; }
constexpr size_t q3_K_high_chunk(int q, int h) { return kPackedQ3_KQuants + 192 * q + 128 + 32 * h; }
// Q6_K (against Q8_K tokens whose quants the packed matmul stores +128): 1728 bytes per
// super-block of a group.
constexpr size_t kPackedQ6_KScales = 16, kPackedQ6_KOffsets = 144, kPackedQ6_KQuants = 192;
constexpr size_t kPackedQ6_KBlockBytes = 1728;
// The chunks a kernel reads together (low nibbles of pieces c and c + 16, high bits of c) lie
// together, so a super-block is one sequential stream.
constexpr size_t q6_K_low_chunk(int a) { return kPackedQ6_KQuants + 96 * (a % 16) + 32 * (a / 16); }
constexpr size_t q6_K_high_chunk(int c) { return kPackedQ6_KQuants + 96 * c + 64; }
// IQ4_XS (against Q8_K): per 256-column super-block of a group, 1104 bytes.
constexpr size_t kPackedIq4XsScales = 16, kPackedIq4XsQuants = 80, kPackedIq4XsBlockBytes = 1104;
constexpr int kPackedIq4XsXoff = 8;  // xoff int32s per super-block: 128 * the sub-block sums
constexpr size_t iq4_xs_chunk(int ib, int j) { return kPackedIq4XsQuants + 128 * ib + 32 * j; }
void pack_iq4_xs_row(const uint8_t* block, int r, uint8_t* out);
void prepare_iq4_xs_token(uint8_t* x, int64_t blocks, int32_t* xoff);
void iq4_xs_x8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y);
void iq4_xs_x8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                                  double* y, float scale);

// Everything the portable layer knows of one packable type. Adding a type: its layout above, a
// PackedFormat in packed.cpp, and (for speed) its kernels in the ISAs' fill_packed_*.
struct PackedFormat {
  GgmlType type;
  int64_t block_cols;  // columns of one packed block (the GGUF block)
  size_t block_bytes;  // bytes of one packed block of a group
  int xoff_per_block;  // int32s of xoff per block and token (PackedDotFn)
  // Row r's GGUF block into the group's packed block.
  void (*pack)(const uint8_t* block, int r, uint8_t* out);
  // A token just quantised (vec_dot_type, `blocks` blocks): its xoff, and any change its quants
  // need for the kernels (Q6_K's are stored +128).
  void (*prepare_token)(uint8_t* x, int64_t blocks, int32_t* xoff);
  // The scalar kernels: the reference for the tests, and what a packed matrix runs on an ISA
  // without this type's kernels (bit-identical: same per-block order, fused multiply-add).
  PackedKernels reference;
};

// Q3_K's packer and scalar kernel (packed_q3_k.cpp).
void pack_q3_K_row(const uint8_t* block, int r, uint8_t* out);
void prepare_q3_K_token(uint8_t* x, int64_t blocks, int32_t* xoff);
void q3_Kx8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y);

// The type's format; null if it has no Packed8 layout.
const PackedFormat* packed_format(GgmlType t);
// "Q4_0 Q8_0 ...": the packable types, for messages.
std::string packable_type_names();

}  // namespace clusterctl::kernels::detail
