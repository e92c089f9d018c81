// Layout::Packed8: packing Q4_0 and Q8_0 rows 8 at a time, and the matmuls over packed
// matrices. A token alone runs a group of 8 rows at a time; several tokens run two groups
// against up to kPackTokens tokens at a time where the ISA has that kernel (a group of 2048
// columns is 9 KB of Q4_0, so its weights stay in L1 across a block of tokens). Both do each
// row's sum in the same order, so a row's result is the same whether its token came alone or in
// a batch.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "worker/common/error.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/packed_matmul.h"

namespace clusterctl::kernels {

namespace detail {
namespace {

// One packed block's integer dot for row r: Q4_0 (nibbles, 4 chunks) or Q8_0 (bytes, 8 chunks).
int32_t q4_0x8_row_dot(const uint8_t* g, int r, const block_q8_0& b) {
  int32_t dot = 0;
  for (int j = 0; j < 4; ++j)
    for (int m = 0; m < 4; ++m) {
      const uint8_t q = g[kPackRows * 2 + 32 * j + 4 * r + m];
      dot += (q & 0x0f) * b.qs[4 * j + m] + (q >> 4) * b.qs[16 + 4 * j + m];
    }
  return dot;
}

int32_t q8_0x8_row_dot(const uint8_t* g, int r, const block_q8_0& b) {
  int32_t dot = 0;
  for (int k = 0; k < 8; ++k)
    for (int m = 0; m < 4; ++m) dot += g[kPackRows * 2 + 32 * k + 4 * r + m] * b.qs[4 * k + m];
  return dot;
}

template <int32_t (*RowDot)(const uint8_t*, int, const block_q8_0&), size_t kBlockBytes>
void packed_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  const auto* b = static_cast<const block_q8_0*>(x);
  float acc[kPackRows] = {};
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const uint8_t* g = group + i * kBlockBytes;
    const float dy = fp16_to_fp32(b[i].d);
    for (int r = 0; r < kPackRows; ++r) {
      fp16_t dw;
      std::memcpy(&dw, g + 2 * r, 2);
      acc[r] = std::fma(static_cast<float>(RowDot(g, r, b[i]) - xoff[i]), fp16_to_fp32(dw) * dy, acc[r]);
    }
  }
  std::copy(acc, acc + kPackRows, y);
}

// Q6_K's weight (q - 32) of row r, element e of a packed super-block (kernels.h).
int32_t q6_Kx8_weight(const uint8_t* g, int r, int e) {
  const int k = e / 4, m = e % 4, quarter = k / 16, c = k % 16;
  const uint8_t low = g[q6_K_low_chunk(c + 16 * (quarter & 1)) + 4 * r + m];
  const uint8_t high = g[q6_K_high_chunk(c) + 4 * r + m];
  return (((low >> (4 * (quarter >> 1))) & 0x0f) | (((high >> (2 * quarter)) & 3) << 4)) - 32;
}

template <PackedDotFn Dot, typename ActBlock, int64_t kCols, size_t kBlockBytes, int kXoff>
void packed_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale) {
  std::fill(y, y + kPackRows, 0.0);
  for (int64_t k = 0; k < n; k += chunk) {
    float part[kPackRows];
    Dot(std::min(chunk, n - k), group + k / kCols * kBlockBytes, static_cast<const ActBlock*>(x) + k / kCols,
        xoff + k / kCols * kXoff, part);
    for (int r = 0; r < kPackRows; ++r) y[r] += part[r] * scale;
  }
}

}  // namespace

void q4_0x8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  packed_dot_scalar<q4_0x8_row_dot, kPackedQ4_0BlockBytes>(n, group, x, xoff, y);
}
void q4_0x8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale) {
  packed_chunked_dot_scalar<q4_0x8_dot_scalar, block_q8_0, QK8_0, kPackedQ4_0BlockBytes, 1>(n, chunk, group, x, xoff,
                                                                                            y, scale);
}
void q8_0x8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  packed_dot_scalar<q8_0x8_row_dot, kPackedQ8_0BlockBytes>(n, group, x, xoff, y);
}
void q8_0x8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale) {
  packed_chunked_dot_scalar<q8_0x8_dot_scalar, block_q8_0, QK8_0, kPackedQ8_0BlockBytes, 1>(n, chunk, group, x, xoff,
                                                                                            y, scale);
}

// Q4_K (Q5_K) against Q8_K: per sub-block pair p, the low and high nibbles' (plus fifth bits')
// dots times their scales; the mins against the token's sub-block sums; then
// (d * isum - dmin * msum) * d_token.
template <bool Fifth>
void k4_x8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  const auto* b = static_cast<const block_q8_K*>(x);
  constexpr size_t kBlockBytes = Fifth ? kPackedQ5_KBlockBytes : kPackedQ4_KBlockBytes;
  float acc[kPackRows] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* g = group + i * kBlockBytes;
    for (int r = 0; r < kPackRows; ++r) {
      int32_t isum = 0, msum = 0;
      for (int p = 0; p < 4; ++p) {
        int32_t lo = 0, hi = 0;
        for (int j = 0; j < 8; ++j)
          for (int m = 0; m < 4; ++m) {
            const uint8_t q = g[k4_quant_chunk<Fifth>(p, j) + 4 * r + m];
            int wl = q & 0x0f, wh = q >> 4;
            if constexpr (Fifth) {
              const uint8_t h = g[q5_K_fifth_chunk(p, j / 4) + 4 * r + m];
              wl |= ((h >> (2 * (j % 4))) & 1) << 4;
              wh |= ((h >> (2 * (j % 4) + 1)) & 1) << 4;
            }
            lo += wl * b[i].qs[64 * p + 4 * j + m];
            hi += wh * b[i].qs[64 * p + 32 + 4 * j + m];
          }
        isum += lo * g[kPackedQ4_KScales + 8 * (2 * p) + r] + hi * g[kPackedQ4_KScales + 8 * (2 * p + 1) + r];
        int16_t mins[2], sums[2];
        std::memcpy(mins, g + kPackedQ4_KMins + 4 * (8 * p + r), 4);
        std::memcpy(sums, xoff + i * kPackedQ4_KXoff + p, 4);
        msum += mins[0] * sums[0] + mins[1] * sums[1];
      }
      fp16_t d, dmin;
      std::memcpy(&d, g + 2 * r, 2);
      std::memcpy(&dmin, g + 16 + 2 * r, 2);
      const float t = std::fma(-fp16_to_fp32(dmin), static_cast<float>(msum), fp16_to_fp32(d) * static_cast<float>(isum));
      acc[r] = std::fma(t, b[i].d, acc[r]);
    }
  }
  std::copy(acc, acc + kPackRows, y);
}

void q4_Kx8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  k4_x8_dot_scalar<false>(n, group, x, xoff, y);
}
void q5_Kx8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  k4_x8_dot_scalar<true>(n, group, x, xoff, y);
}

// Q6_K against Q8_K stored +128: per 16-element sub-block the unsigned x signed dot times the
// scale, less the row's constant; then acc += isum * (d * d_token).
void q6_Kx8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  (void)xoff;
  const auto* b = static_cast<const block_q8_K*>(x);
  float acc[kPackRows] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* g = group + i * kPackedQ6_KBlockBytes;
    for (int r = 0; r < kPackRows; ++r) {
      int32_t isum = 0;
      for (int s = 0; s < 16; ++s) {
        int32_t dot = 0;
        for (int e = 16 * s; e < 16 * s + 16; ++e) dot += static_cast<uint8_t>(b[i].qs[e]) * q6_Kx8_weight(g, r, e);
        isum += dot * static_cast<int8_t>(g[kPackedQ6_KScales + 8 * s + r]);
      }
      int32_t offset;
      std::memcpy(&offset, g + kPackedQ6_KOffsets + 4 * r, 4);
      fp16_t d;
      std::memcpy(&d, g + 2 * r, 2);
      acc[r] = std::fma(static_cast<float>(isum - offset), fp16_to_fp32(d) * b[i].d, acc[r]);
    }
  }
  std::copy(acc, acc + kPackRows, y);
}

void q4_Kx8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale) {
  packed_chunked_dot_scalar<q4_Kx8_dot_scalar, block_q8_K, QK_K, kPackedQ4_KBlockBytes, kPackedQ4_KXoff>(
      n, chunk, group, x, xoff, y, scale);
}
void q5_Kx8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale) {
  packed_chunked_dot_scalar<q5_Kx8_dot_scalar, block_q8_K, QK_K, kPackedQ5_KBlockBytes, kPackedQ4_KXoff>(
      n, chunk, group, x, xoff, y, scale);
}
void q6_Kx8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale) {
  packed_chunked_dot_scalar<q6_Kx8_dot_scalar, block_q8_K, QK_K, kPackedQ6_KBlockBytes, 0>(n, chunk, group, x, xoff,
                                                                                           y, scale);
}

}  // namespace detail

namespace {

using detail::PackedKernels;

// Groups per work item: a few items per thread, so a thread the OS delays is evened out.
int64_t groups_per_item(int64_t groups, int n_threads) {
  return std::max<int64_t>(2, groups / (static_cast<int64_t>(n_threads) * 8));
}

// A token block whose quantised activations stay in L2 while a group's rows go past.
constexpr int64_t kTokenBlock = 64;
// Below this many multiply-adds the caller does the matrix alone (waking the pool costs more).
constexpr int64_t kMinParallelMacs = 64 * 1024;

// What a packed type stores and which kernels compute it on the active ISA (scalar where none).
struct PackedType {
  int64_t block_cols;  // columns of one packed block
  size_t block_bytes;  // bytes of one packed block of a group
  int32_t offset;      // Q4_0/Q8_0: added to every stored quant
  int xoff_per_block;  // xoff int32s per block and token
  PackedKernels kernels;
};

PackedType packed_type(GgmlType t) {
  PackedKernels k = detail::active_table().packed[detail::slot(t)];
  switch (t) {
    case GgmlType::Q8_0:
      if (!k.dot) k = {detail::q8_0x8_dot_scalar, detail::q8_0x8_chunked_dot_scalar};
      return {QK8_0, detail::kPackedQ8_0BlockBytes, detail::kPackedQ8_0Offset, 1, k};
    case GgmlType::Q4_K:
      if (!k.dot) k = {detail::q4_Kx8_dot_scalar, detail::q4_Kx8_chunked_dot_scalar};
      return {QK_K, detail::kPackedQ4_KBlockBytes, 0, detail::kPackedQ4_KXoff, k};
    case GgmlType::Q5_K:
      if (!k.dot) k = {detail::q5_Kx8_dot_scalar, detail::q5_Kx8_chunked_dot_scalar};
      return {QK_K, detail::kPackedQ5_KBlockBytes, 0, detail::kPackedQ4_KXoff, k};
    case GgmlType::Q6_K:
      if (!k.dot) k = {detail::q6_Kx8_dot_scalar, detail::q6_Kx8_chunked_dot_scalar};
      return {QK_K, detail::kPackedQ6_KBlockBytes, 0, 0, k};
    default:
      if (!k.dot) k = {detail::q4_0x8_dot_scalar, detail::q4_0x8_chunked_dot_scalar};
      return {QK4_0, detail::kPackedQ4_0BlockBytes, detail::kPackedQ4_0Offset, 1, k};
  }
}


// The tokens quantised (Q8_0, or Q8_K for the K-quants) once per call, with their xoff: per Q8_0
// block offset * sum(quants); for Q4_K per Q8_K block the 4 sub-block pairs' sums as int16
// pairs; for Q6_K none, its tokens' quants stored +128 instead.
struct PackedActivations {
  const uint8_t* xq = nullptr;
  size_t x_stride = 0;
  const int32_t* xoff = nullptr;
  size_t xoff_stride = 0;  // int32s per token
};

PackedActivations quantize_tokens(const Matrix& w, const PackedType& type, const float* x, int64_t n_tokens,
                                  ThreadPool& pool, Workspace& ws) {
  PackedActivations a;
  const int64_t nb = w.cols / type.block_cols;
  a.x_stride = (activation_row_bytes(w.type, w.cols) + 63) & ~size_t{63};
  a.xoff_stride = static_cast<size_t>(nb * type.xoff_per_block + 15) & ~size_t{15};
  auto* buf = static_cast<uint8_t*>(ws.get((a.x_stride + a.xoff_stride * sizeof(int32_t)) * n_tokens));
  auto* sums = reinterpret_cast<int32_t*>(buf + a.x_stride * n_tokens);
  const GgmlType act = vec_dot_type(w.type);
  const auto quantize = detail::active_table().quantize[detail::slot(act)];
  auto convert = [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      quantize(x + t * w.cols, buf + t * a.x_stride, w.cols);
      int32_t* xoff = sums + t * a.xoff_stride;
      if (w.type == GgmlType::Q6_K) {
        auto* blocks = reinterpret_cast<block_q8_K*>(buf + t * a.x_stride);
        for (int64_t i = 0; i < nb; ++i)
          for (int8_t& q : blocks[i].qs) q = static_cast<int8_t>(static_cast<uint8_t>(q) ^ 0x80);
        continue;
      }
      if (act == GgmlType::Q8_K) {
        const auto* blocks = reinterpret_cast<const block_q8_K*>(buf + t * a.x_stride);
        for (int64_t i = 0; i < nb; ++i)
          for (int p = 0; p < 4; ++p) {
            const int16_t* s = blocks[i].bsums + 4 * p;
            const int16_t pair[2] = {static_cast<int16_t>(s[0] + s[1]), static_cast<int16_t>(s[2] + s[3])};
            std::memcpy(xoff + i * detail::kPackedQ4_KXoff + p, pair, 4);
          }
        continue;
      }
      const auto* blocks = reinterpret_cast<const block_q8_0*>(buf + t * a.x_stride);
      for (int64_t i = 0; i < nb; ++i) {
        int32_t s = 0;
        for (int8_t q : blocks[i].qs) s += q;
        xoff[i] = type.offset * s;
      }
    }
  };
  if (n_tokens == 1 || pool.size() == 1) convert(0, n_tokens);
  else pool.parallel_for(n_tokens, convert);
  a.xq = buf;
  a.xoff = sums;
  return a;
}

// Runs item(t_begin, t_end, g_begin, g_end) over blocks of tokens and groups of rows.
template <typename Item>
void for_each_item(const Matrix& w, int64_t n_tokens, ThreadPool& pool, Item&& item) {
  const int64_t groups = w.rows / kPackRows;
  if (n_tokens * w.rows * w.cols < kMinParallelMacs || pool.size() == 1) {
    for (int64_t t = 0; t < n_tokens; t += kTokenBlock) item(t, std::min(n_tokens, t + kTokenBlock), 0, groups);
    return;
  }
  const int64_t per_item = groups_per_item(groups, pool.size());
  const int64_t group_items = (groups + per_item - 1) / per_item;
  const int64_t token_blocks = (n_tokens + kTokenBlock - 1) / kTokenBlock;
  pool.for_each_claimed(group_items * token_blocks, [&](int64_t i) {
    const int64_t t = (i / group_items) * kTokenBlock, g = (i % group_items) * per_item;
    item(t, std::min(n_tokens, t + kTokenBlock), g, std::min(groups, g + per_item));
  });
}

}  // namespace

// Row r of one block into its packed group block, per type (kernels.h has the layouts).
void pack_q4_0_row(const block_q4_0* blk, int r, uint8_t* out) {
  std::memcpy(out + 2 * r, &blk->d, 2);
  for (int j = 0; j < 4; ++j) std::memcpy(out + kPackRows * 2 + 32 * j + 4 * r, blk->qs + 4 * j, 4);
}

void pack_q8_0_row(const block_q8_0* blk, int r, uint8_t* out) {
  std::memcpy(out + 2 * r, &blk->d, 2);
  for (int k = 0; k < 8; ++k)
    for (int m = 0; m < 4; ++m)
      out[kPackRows * 2 + 32 * k + 4 * r + m] = static_cast<uint8_t>(blk->qs[4 * k + m] ^ 0x80);  // +128
}

// Q4_K's fields, which Q5_K shares.
template <bool Fifth, typename Block>
void pack_k4_row(const Block* blk, int r, uint8_t* out) {
  std::memcpy(out + 2 * r, &blk->d, 2);
  std::memcpy(out + 16 + 2 * r, &blk->dmin, 2);
  int16_t mins[8];
  for (int s = 0; s < 8; ++s) {
    int sc = 0, m = 0;
    detail::k4_scale_min(s, blk->scales, &sc, &m);
    out[detail::kPackedQ4_KScales + 8 * s + r] = static_cast<uint8_t>(sc);
    mins[s] = static_cast<int16_t>(m);
  }
  for (int p = 0; p < 4; ++p) std::memcpy(out + detail::kPackedQ4_KMins + 4 * (8 * p + r), mins + 2 * p, 4);
  for (int p = 0; p < 4; ++p)
    for (int j = 0; j < 8; ++j)
      std::memcpy(out + detail::k4_quant_chunk<Fifth>(p, j) + 4 * r, blk->qs + 32 * p + 4 * j, 4);
}

void pack_q4_K_row(const block_q4_K* blk, int r, uint8_t* out) { pack_k4_row<false>(blk, r, out); }

// GGUF keeps the fifth bit of element 64p + 32h + l at bit 2p + h of qh[l].
void pack_q5_K_row(const block_q5_K* blk, int r, uint8_t* out) {
  pack_k4_row<true>(blk, r, out);
  for (int p = 0; p < 4; ++p)
    for (int h = 0; h < 2; ++h)
      for (int m = 0; m < 4; ++m) {
        uint8_t bits = 0;
        for (int b = 0; b < 4; ++b) {
          const int l = 4 * (4 * h + b) + m;
          bits |= static_cast<uint8_t>(((blk->qh[l] >> (2 * p)) & 1) << (2 * b));
          bits |= static_cast<uint8_t>(((blk->qh[l] >> (2 * p + 1)) & 1) << (2 * b + 1));
        }
        out[detail::q5_K_fifth_chunk(p, h) + 4 * r + m] = bits;
      }
}

void pack_q6_K_row(const block_q6_K* blk, int r, uint8_t* out) {
  int8_t w[QK_K];
  for (int e = 0; e < QK_K; ++e) {  // GGUF's order: halves of 128, each 4 quadrants of 32
    const int h = e / 128, quadrant = (e % 128) / 32, l = e % 32;
    const uint8_t low = blk->ql[64 * h + 32 * (quadrant & 1) + l] >> (4 * (quadrant >> 1));
    const uint8_t high = blk->qh[32 * h + l] >> (2 * quadrant);
    w[e] = static_cast<int8_t>(((low & 0x0f) | ((high & 3) << 4)) - 32);
  }
  std::memcpy(out + 2 * r, &blk->d, 2);
  int32_t offset = 0;
  for (int s = 0; s < 16; ++s) {
    out[detail::kPackedQ6_KScales + 8 * s + r] = static_cast<uint8_t>(blk->scales[s]);
    int32_t sum = 0;
    for (int e = 16 * s; e < 16 * s + 16; ++e) sum += w[e];
    offset += 128 * blk->scales[s] * sum;
  }
  std::memcpy(out + detail::kPackedQ6_KOffsets + 4 * r, &offset, 4);
  for (int k = 0; k < 64; ++k) {
    const int quarter = k / 16, c = k % 16;
    for (int m = 0; m < 4; ++m) {
      const uint8_t q = static_cast<uint8_t>(w[4 * k + m] + 32);
      uint8_t& low = out[detail::q6_K_low_chunk(c + 16 * (quarter & 1)) + 4 * r + m];
      uint8_t& high = out[detail::q6_K_high_chunk(c) + 4 * r + m];
      if (quarter == 0) low = high = 0;  // this byte's first write (pieces c and c + 16 come first)
      if (quarter == 1) low = 0;
      low |= static_cast<uint8_t>((q & 0x0f) << (4 * (quarter >> 1)));
      high |= static_cast<uint8_t>((q >> 4) << (2 * quarter));
    }
  }
}

bool is_packable(GgmlType t) {
  return t == GgmlType::Q4_0 || t == GgmlType::Q8_0 || t == GgmlType::Q4_K || t == GgmlType::Q5_K ||
         t == GgmlType::Q6_K;
}

bool should_pack(const Matrix& w) {
  return w.layout == Layout::Rows && is_packable(w.type) && w.rows % kPackRows == 0 && w.rows > 0 &&
         w.cols % packed_type(w.type).block_cols == 0 && detail::active_table().packed[detail::slot(w.type)].dot != nullptr;
}

size_t packed_bytes(const Matrix& w) {
  const PackedType type = packed_type(w.type);
  const size_t blocks = static_cast<size_t>(w.rows / kPackRows) * static_cast<size_t>(w.cols / type.block_cols);
  return blocks * type.block_bytes;
}

Matrix pack_rows8(const Matrix& w, uint8_t* dst) {
  if (w.layout != Layout::Rows || !is_packable(w.type) || w.rows % kPackRows != 0 ||
      w.cols % packed_type(w.type).block_cols != 0)
    throw Error("pack_rows8 needs a Q4_0, Q8_0, Q4_K, Q5_K or Q6_K matrix of whole groups of 8 rows");
  const PackedType type = packed_type(w.type);
  const int64_t nb = w.cols / type.block_cols;
  for (int64_t g = 0; g < w.rows / kPackRows; ++g)
    for (int64_t i = 0; i < nb; ++i) {
      uint8_t* out = dst + (g * nb + i) * type.block_bytes;
      for (int r = 0; r < kPackRows; ++r) {
        const uint8_t* row = w.data + (g * kPackRows + r) * w.row_stride;
        switch (w.type) {
          case GgmlType::Q4_0: pack_q4_0_row(reinterpret_cast<const block_q4_0*>(row) + i, r, out); break;
          case GgmlType::Q8_0: pack_q8_0_row(reinterpret_cast<const block_q8_0*>(row) + i, r, out); break;
          case GgmlType::Q4_K: pack_q4_K_row(reinterpret_cast<const block_q4_K*>(row) + i, r, out); break;
          case GgmlType::Q5_K: pack_q5_K_row(reinterpret_cast<const block_q5_K*>(row) + i, r, out); break;
          default: pack_q6_K_row(reinterpret_cast<const block_q6_K*>(row) + i, r, out); break;
        }
      }
    }
  Matrix p = w;
  p.data = dst;
  p.row_stride = 0;
  p.layout = Layout::Packed8;
  return p;
}

namespace detail {

namespace {

// One work item's groups [g0, g1) x tokens [t0, t1). Several tokens share each pair of groups'
// unpacking (`many`, when the ISA has it); an odd group and a lone token take `one`.
template <typename One, typename Many>
void run_item(int64_t t0, int64_t t1, int64_t g0, int64_t g1, bool have_many, One&& one, Many&& many) {
  int64_t g = g0;
  if (have_many && t1 - t0 > 1)
    for (; g + 1 < g1; g += 2)
      for (int64_t t = t0; t < t1; t += kPackTokens)
        many(g, t, static_cast<int>(std::min<int64_t>(kPackTokens, t1 - t)));
  for (; g < g1; ++g)
    for (int64_t t = t0; t < t1; ++t) one(g, t);
}

}  // namespace

void matmul_packed(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, Workspace& ws) {
  const PackedType type = packed_type(w.type);
  const PackedActivations a = quantize_tokens(w, type, x, n_tokens, pool, ws);
  const size_t group_bytes = static_cast<size_t>(w.cols / type.block_cols) * type.block_bytes;
  for_each_item(w, n_tokens, pool, [&](int64_t t0, int64_t t1, int64_t g0, int64_t g1) {
    run_item(
        t0, t1, g0, g1, type.kernels.tokens_dot != nullptr,
        [&](int64_t g, int64_t t) {
          type.kernels.dot(w.cols, w.data + g * group_bytes, a.xq + t * a.x_stride, a.xoff + t * a.xoff_stride,
                           y + t * w.rows + g * kPackRows);
        },
        [&](int64_t g, int64_t t, int n) {
          type.kernels.tokens_dot(w.cols, w.data + g * group_bytes, w.data + (g + 1) * group_bytes,
                                  a.xq + t * a.x_stride, a.x_stride, a.xoff + t * a.xoff_stride, a.xoff_stride, n,
                                  y + t * w.rows + g * kPackRows, static_cast<size_t>(w.rows));
        });
  });
}

void matmul_row_parallel_packed(const Matrix& w, int64_t chunk, const float* x, int64_t n_tokens, double* y,
                                ThreadPool& pool, Workspace& ws, const float* token_scale) {
  const PackedType type = packed_type(w.type);
  const PackedActivations a = quantize_tokens(w, type, x, n_tokens, pool, ws);
  const size_t group_bytes = static_cast<size_t>(w.cols / type.block_cols) * type.block_bytes;
  for_each_item(w, n_tokens, pool, [&](int64_t t0, int64_t t1, int64_t g0, int64_t g1) {
    run_item(
        t0, t1, g0, g1, type.kernels.tokens_chunked_dot != nullptr,
        [&](int64_t g, int64_t t) {
          type.kernels.chunked_dot(w.cols, chunk, w.data + g * group_bytes, a.xq + t * a.x_stride,
                                   a.xoff + t * a.xoff_stride, y + t * w.rows + g * kPackRows,
                                   token_scale ? token_scale[t] : 1.0f);
        },
        [&](int64_t g, int64_t t, int n) {
          type.kernels.tokens_chunked_dot(w.cols, chunk, w.data + g * group_bytes, w.data + (g + 1) * group_bytes,
                                          a.xq + t * a.x_stride, a.x_stride, a.xoff + t * a.xoff_stride,
                                          a.xoff_stride, n, y + t * w.rows + g * kPackRows,
                                          static_cast<size_t>(w.rows), token_scale ? token_scale + t : nullptr);
        });
  });
}

}  // namespace detail
}  // namespace clusterctl::kernels
