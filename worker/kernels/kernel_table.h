#pragma once
// The per-ISA table of kernel functions the dispatcher (dispatch.cpp) chooses from. Each ISA
// source fills in what it accelerates and leaves the rest as the next-lower ISA set it.
#include <cstddef>
#include <cstdint>

#include "worker/kernels/kernels.h"

namespace clusterctl::kernels::detail {

// dot(w_row, x_row) of n elements; x_row is quantised to the weight type's partner.
using VecDotFn = float (*)(int64_t n, const void* w_row, const void* x_row);
// Quantises n floats into the activation type's blocks.
using QuantizeFn = void (*)(const float* x, void* out, int64_t n);
// A tile of dot products: y[t * y_stride + r] (+)= dot(w row r, x row t) for r < n_rows and
// t < n_tokens, with n_rows <= TileKernel::rows and n_tokens <= TileKernel::tokens; with
// `accumulate` the dot is added to y (the matmul splits long rows into cache-sized slices).
// Loading a weight block once for several tokens is what makes prompt processing fast.
using TileFn = void (*)(int64_t n, const uint8_t* w, size_t w_stride, int n_rows, const uint8_t* x,
                        size_t x_stride, int n_tokens, float* y, size_t y_stride, bool accumulate);

constexpr int kTypeSlots = 31;  // raw ggml type numbers 0..30 (BF16 = 30)
constexpr int slot(GgmlType t) { return static_cast<int>(t); }

// Rewrites one quantised activation row (n elements) into the layout a tile reads directly,
// done once per matmul so the tiles do not redo it for every group of rows.
using ExpandFn = void (*)(const void* x_row, int64_t n, uint8_t* out);

// The chunked tile of matmul_row_parallel: y[t * y_stride + r] += sum over the chunks of `chunk`
// elements (the last one possibly shorter) of the chunk's float dot, folded into double.
using ChunkedTileFn = void (*)(int64_t n, int64_t chunk, const uint8_t* w, size_t w_stride, int n_rows,
                               const uint8_t* x, size_t x_stride, int n_tokens, double* y, size_t y_stride);

// The most outputs (rows x tokens) one tile call writes: what matmul_row_parallel's per-chunk
// use of a float tile keeps on the stack.
constexpr int kMaxTileOutputs = 64;

struct TileKernel {
  TileFn fn = nullptr;  // null: the matmul pairs vec_dot calls instead
  int rows = 1;
  int tokens = 1;
  ExpandFn expand = nullptr;     // null: the tile reads quantize_activations' rows
  int expanded_bytes_per_64 = 0;  // bytes of expanded row per 64 elements (rows padded to 64)
  ChunkedTileFn chunked = nullptr;  // same rows x tokens; null: matmul_row_parallel calls `fn` per chunk
};

// Decoding: y[r] = dot(w row r, x) for r < n_rows <= kDecodeRows, rows w_stride bytes apart.
// Several rows per call let a kernel convert their scales together and share the work on x.
using RowsDotFn = void (*)(int64_t n, const uint8_t* w, size_t w_stride, int n_rows, const void* x, float* y);
constexpr int kDecodeRows = 8;
// The same for matmul_row_parallel: y[r] = sum over chunks (as ChunkedTileFn) of the chunk's float dot.
using ChunkedRowsDotFn = void (*)(int64_t n, int64_t chunk, const uint8_t* w, size_t w_stride, int n_rows,
                                  const void* x, double* y);

// Layout::Packed8 (kernels.h): y[0..8) = one group of 8 packed rows (n columns) against one
// Q8_0 token; xoff[b] = the type's storage offset (8 for Q4_0, 128 for Q8_0) * the sum of the
// token's block b quants, which each row's integer dot gives back.
using PackedDotFn = void (*)(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y);
// The same for matmul_row_parallel: each row's float sum restarts every `chunk` columns and is
// folded into a double, times `scale` in float first (1: unweighted; a router weight: experts).
using ChunkedPackedDotFn = void (*)(int64_t n, int64_t chunk, const uint8_t* group, const void* x,
                                    const int32_t* xoff, double* y, float scale);
// Prompt tokens: two groups (16 rows: group0's 8, then group1's) against n_tokens <=
// kPackTokens tokens, unpacking the weights once for all of them. Token t's Q8_0 row is at
// x + t * x_stride, its xoff at xoff + t * xoff_stride, its 16 results at y + t * y_stride.
// Per row and token the arithmetic of PackedDotFn (ChunkedPackedDotFn), so the same bits.
using PackedTokensDotFn = void (*)(int64_t n, const uint8_t* group0, const uint8_t* group1, const uint8_t* x,
                                   size_t x_stride, const int32_t* xoff, size_t xoff_stride, int n_tokens, float* y,
                                   size_t y_stride);
// (scale: token t's chunk sums times scale[t]; null: unweighted.)
using ChunkedPackedTokensDotFn = void (*)(int64_t n, int64_t chunk, const uint8_t* group0, const uint8_t* group1,
                                          const uint8_t* x, size_t x_stride, const int32_t* xoff,
                                          size_t xoff_stride, int n_tokens, double* y, size_t y_stride,
                                          const float* scale);
constexpr int kPackTokens = 4;
// Bytes of one 32-column block of a group of 8 rows, and the storage offset of the quants.
constexpr size_t kPackedQ4_0BlockBytes = kPackRows * (2 + 16);
constexpr size_t kPackedQ8_0BlockBytes = kPackRows * (2 + 32);
constexpr int32_t kPackedQ4_0Offset = 8;
constexpr int32_t kPackedQ8_0Offset = 128;
// Q4_K (against Q8_K tokens; kernels.h): per 256-column super-block of a group, 1248 bytes.
constexpr size_t kPackedQ4_KScales = 32, kPackedQ4_KMins = 96, kPackedQ4_KQuants = 224;
constexpr size_t kPackedQ4_KBlockBytes = 1248;
constexpr int kPackedQ4_KXoff = 4;  // xoff int32s per super-block: the min pairs' activation sums
// Q5_K: Q4_K's fields, then per sub-block pair p its 8 nibble chunks followed by 2 chunks of
// their fifth bits, so a super-block stays one sequential stream: byte m of row r in fifth-bit
// chunk h holds, for nibble chunk j = 4h + b (b = 0..3), bit 2b: the fifth bit of j's low-nibble
// element m, bit 2b + 1: of its high-nibble element m.
constexpr size_t kPackedQ5_KBlockBytes = kPackedQ4_KBlockBytes + 256;
template <bool Fifth>
constexpr size_t k4_quant_chunk(int p, int j) { return kPackedQ4_KQuants + (Fifth ? 320 : 256) * p + 32 * j; }
constexpr size_t q5_K_fifth_chunk(int p, int h) { return kPackedQ4_KQuants + 320 * p + 256 + 32 * h; }
// Q6_K (against Q8_K tokens whose quants the packed matmul stores +128): 1728 bytes per
// super-block of a group.
constexpr size_t kPackedQ6_KScales = 16, kPackedQ6_KOffsets = 144, kPackedQ6_KQuants = 192;
constexpr size_t kPackedQ6_KBlockBytes = 1728;
// The chunks a kernel reads together (low nibbles of pieces c and c + 16, high bits of c) lie
// together, so a super-block is one sequential stream.
constexpr size_t q6_K_low_chunk(int a) { return kPackedQ6_KQuants + 96 * (a % 16) + 32 * (a / 16); }
constexpr size_t q6_K_high_chunk(int c) { return kPackedQ6_KQuants + 96 * c + 64; }

// One packable type's kernels; `dot` null: matrices of the type stay in Layout::Rows on this ISA.
struct PackedKernels {
  PackedDotFn dot = nullptr;
  ChunkedPackedDotFn chunked_dot = nullptr;
  PackedTokensDotFn tokens_dot = nullptr;  // null: prompt tokens take `dot` one by one
  ChunkedPackedTokensDotFn tokens_chunked_dot = nullptr;
};

// The scalar forms: the reference for the tests and what a packed matrix falls back to when
// the active ISA has no packed kernels (bit-identical: same per-block order, fused multiply-add).
void q4_0x8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y);
void q4_0x8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale);
void q8_0x8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y);
void q8_0x8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale);
void q4_Kx8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y);
void q6_Kx8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y);
void q6_Kx8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale);
void q4_Kx8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale);
void q5_Kx8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y);
void q5_Kx8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale);

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block's 12 scale bytes.
void k4_scale_min(int j, const uint8_t* q, int* sc, int* m);

struct KernelTable {
  VecDotFn vec_dot[kTypeSlots] = {};     // by weight type
  QuantizeFn quantize[kTypeSlots] = {};  // by activation type (Q8_0, Q8_1, Q8_K, F16, BF16)
  TileKernel tile[kTypeSlots] = {};      // by weight type
  RowsDotFn rows_dot[kTypeSlots] = {};   // by weight type; null: vec_dot row by row
  ChunkedRowsDotFn chunked_rows_dot[kTypeSlots] = {};  // by weight type; null: vec_dot chunk by chunk
  PackedKernels packed[kTypeSlots];    // by weight type (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K)
};

// Each fills `table` on top of what is already there (scalar first, then the SIMD levels).
void fill_scalar(KernelTable& table);
#if defined(__x86_64__) || defined(_M_X64)
void fill_avx2(KernelTable& table);
void fill_avx2_tiles(KernelTable& table);  // prompt-processing tiles (x86/avx2_tiles.cpp)
void fill_avx512(KernelTable& table);       // F/BW/VL without VNNI
void fill_avx512_vnni(KernelTable& table);  // F/BW/VL + VNNI
#endif
#if defined(__aarch64__)
void fill_neon(KernelTable& table);
#endif

// The table of the active ISA.
const KernelTable& active_table();

}  // namespace clusterctl::kernels::detail
