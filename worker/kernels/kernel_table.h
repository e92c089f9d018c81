#pragma once
// The per-ISA table of kernel functions the dispatcher (dispatch.cpp) chooses from. Each ISA
// source fills in what it accelerates and leaves the rest as the next-lower ISA set it.
#include <cstddef>
#include <cstdint>

#include "worker/kernels/kernels.h"

namespace clusterctl::kernels::detail {

// dot(w_row, x_row) of n elements; x_row is quantised to the weight type's partner.
using VecDotFn = float (*)(int64_t n, const void* w_row, const void* x_row);
// out[r] = dot(rows + r * stride, x) of n elements for r < n_rows: attention's many short dots
// (a query against a head's cached keys, its weights against the value rows) in one call.
using VecDotsFn = void (*)(int64_t n, const uint8_t* rows, size_t stride, int64_t n_rows, const void* x, float* out);
// A VecDotsFn made of a VecDotFn inlined row by row (flatten: the kernels are too long for the
// compiler to inline on its own): one vec_dot a row's bits, without a dispatch and a call per row
// (at pp512 those cost a third as much as the dots themselves).
template <VecDotFn Dot>
[[gnu::flatten]] void dots_row_by_row(int64_t n, const uint8_t* rows, size_t stride, int64_t n_rows, const void* x,
                                      float* out) {
  for (int64_t r = 0; r < n_rows; ++r) out[r] = Dot(n, rows + r * stride, x);
}
// Quantises n floats into the activation type's blocks.
using QuantizeFn = void (*)(const float* x, void* out, int64_t n);
// A tile of dot products: y[t * y_stride + r] (+)= dot(w row r, x row t) for r < n_rows and
// t < n_tokens, with n_rows <= TileKernel::rows and n_tokens <= TileKernel::tokens; with
// `accumulate` the dot is added to y (the matmul splits long rows into cache-sized slices).
// Loading a weight block once for several tokens is what makes prompt processing fast.
using TileFn = void (*)(int64_t n, const uint8_t* w, size_t w_stride, int n_rows, const uint8_t* x, size_t x_stride,
                        int n_tokens, float* y, size_t y_stride, bool accumulate);

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
  ExpandFn expand = nullptr;        // null: the tile reads quantize_activations' rows
  int expanded_bytes_per_64 = 0;    // bytes of expanded row per 64 elements (rows padded to 64)
  ChunkedTileFn chunked = nullptr;  // same rows x tokens; null: matmul_row_parallel calls `fn` per chunk
};

// Decoding: y[r] = dot(w row r, x) for r < n_rows <= kDecodeRows, rows w_stride bytes apart.
// Several rows per call let a kernel convert their scales together and share the work on x.
using RowsDotFn = void (*)(int64_t n, const uint8_t* w, size_t w_stride, int n_rows, const void* x, float* y);
constexpr int kDecodeRows = 8;
// The same for matmul_row_parallel: y[r] = sum over chunks (as ChunkedTileFn) of the chunk's float dot,
// times `scale` in float first (1: unweighted; a router weight: experts).
using ChunkedRowsDotFn = void (*)(int64_t n, int64_t chunk, const uint8_t* w, size_t w_stride, int n_rows,
                                  const void* x, double* y, float scale);

// Layout::Packed8 (packed.h): y[0..8) = one group of 8 packed rows (n columns) against one
// Q8_0 token; xoff[b] = the type's storage offset (8 for Q4_0, 128 for Q8_0) * the sum of the
// token's block b quants, which each row's integer dot gives back.
using PackedDotFn = void (*)(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y);
// The same for matmul_row_parallel: each row's float sum restarts every `chunk` columns and is
// folded into a double, times `scale` in float first (1: unweighted; a router weight: experts).
using ChunkedPackedDotFn = void (*)(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                                    double* y, float scale);
// Prompt tokens: two groups (16 rows: group0's 8, then group1's) against n_tokens <=
// kPackTokens tokens, unpacking the weights once for all of them. Token t's Q8_0 row is at
// x + t * x_stride, its xoff at xoff + t * xoff_stride, its 16 results at y + t * y_stride.
// Per row and token the arithmetic of PackedDotFn (ChunkedPackedDotFn), so the same bits.
using PackedTokensDotFn = void (*)(int64_t n, const uint8_t* group0, const uint8_t* group1, const uint8_t* x,
                                   size_t x_stride, const int32_t* xoff, size_t xoff_stride, int n_tokens, float* y,
                                   size_t y_stride);
// (scale: token t's chunk sums times scale[t]; null: unweighted.)
using ChunkedPackedTokensDotFn = void (*)(int64_t n, int64_t chunk, const uint8_t* group0, const uint8_t* group1,
                                          const uint8_t* x, size_t x_stride, const int32_t* xoff, size_t xoff_stride,
                                          int n_tokens, double* y, size_t y_stride, const float* scale);
constexpr int kPackTokens = 4;

// One packable type's kernels; `dot` null: matrices of the type stay in Layout::Rows on this ISA.
struct PackedKernels {
  PackedDotFn dot = nullptr;
  ChunkedPackedDotFn chunked_dot = nullptr;
  PackedTokensDotFn tokens_dot = nullptr;  // null: prompt tokens take `dot` one by one
  ChunkedPackedTokensDotFn tokens_chunked_dot = nullptr;
};

// The float-16 and float vector updates of kernels.h (f16_scale ... f32_column_dots).
using F16ScaleFn = void (*)(int64_t n, fp16_t* y, float s);
using F16MadFn = void (*)(int64_t n, fp16_t* y, const fp16_t* x, float v);
using F16ToF32Fn = void (*)(int64_t n, const fp16_t* x, float* y);
using F32MadFn = void (*)(int64_t n, float* y, const float* x, float v);
using F32ColumnDotsFn = void (*)(int64_t k, int64_t n, const float* bt, int64_t ld, const float* a, float* c);

struct KernelTable {
  F16ScaleFn f16_scale = nullptr;
  F16MadFn f16_mad = nullptr;
  F16ToF32Fn f16_to_f32 = nullptr;
  F32MadFn f32_mad = nullptr;
  F32ColumnDotsFn f32_column_dots = nullptr;
  VecDotFn vec_dot[kTypeSlots] = {};                   // by weight type
  VecDotsFn vec_dots[kTypeSlots] = {};                 // by weight type; null: vec_dot row by row
  QuantizeFn quantize[kTypeSlots] = {};                // by activation type (Q8_0, Q8_1, Q8_K, F16, BF16)
  TileKernel tile[kTypeSlots] = {};                    // by weight type
  RowsDotFn rows_dot[kTypeSlots] = {};                 // by weight type; null: vec_dot row by row
  ChunkedRowsDotFn chunked_rows_dot[kTypeSlots] = {};  // by weight type; null: vec_dot chunk by chunk
  PackedKernels packed[kTypeSlots];                    // by weight type (the packable types, packed.h)
};

// Each fills `table` on top of what is already there: the scalar row kernels first, then per
// ISA level its roles (rows: decoding dots and activation quantisers; packed: Layout::Packed8;
// tiles: prompt tiles). A file's ISA suffix (_avx2, _vnni, _neon) sets its compile flags.
void fill_rows_scalar(KernelTable& table);
void fill_rows_iq_scalar(KernelTable& table);  // the 1-3-bit IQ formats (rows_iq.cpp)
#if defined(__x86_64__) || defined(_M_X64)
void fill_rows_avx2(KernelTable& table);
void fill_packed_avx2(KernelTable& table);
void fill_rows_vnni(KernelTable& table);  // AVX-512 F/BW/VL + VNNI
void fill_packed_vnni(KernelTable& table);
void fill_tiles_vnni(KernelTable& table);
#endif
#if defined(__aarch64__)
void fill_rows_neon(KernelTable& table);
void fill_rows_iq_neon(KernelTable& table);  // the 1-3-bit IQ formats (rows_iq_neon.cpp)
void fill_packed_neon(KernelTable& table);
#endif

// The table of the active ISA.
const KernelTable& active_table();

}  // namespace clusterctl::kernels::detail
