// Layout::Packed8's formats (packed.h): per packable type its packer, what its kernels need
// beside a token's quants, and its scalar kernels; and the public packing calls.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "worker/common/error.h"
#include "worker/kernels/packed.h"
#include "worker/kernels/quant_ref.h"

namespace clusterctl::kernels {
namespace detail {
namespace {

// ---- the scalar kernels ----

// A packed K-quant super-block's row r from its integer sums: d * isum - dmin * msum, with d and
// dmin the row's halves at the head of the group (Q2_K, Q4_K and Q5_K put them there alike).
float k_superblock_sum(const uint8_t* g, int r, int32_t isum, int32_t msum) {
  fp16_t d, dmin;
  std::memcpy(&d, g + 2 * r, 2);
  std::memcpy(&dmin, g + 16 + 2 * r, 2);
  return std::fma(-fp16_to_fp32(dmin), static_cast<float>(msum), fp16_to_fp32(d) * static_cast<float>(isum));
}

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

// IQ4_NL: each nibble's table value + 128 (xoff takes the 128s off).
int32_t iq4_nl_x8_row_dot(const uint8_t* g, int r, const block_q8_0& b) {
  int32_t dot = 0;
  for (int j = 0; j < 4; ++j)
    for (int m = 0; m < 4; ++m) {
      const uint8_t q = g[kPackRows * 2 + 32 * j + 4 * r + m];
      dot += (kValuesIq4nl[q & 0x0f] + kPackedIq4NlOffset) * b.qs[4 * j + m] +
             (kValuesIq4nl[q >> 4] + kPackedIq4NlOffset) * b.qs[16 + 4 * j + m];
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

// Q2_K against Q8_K: per sub-block its 2-bit dot times the scale; the mins against the
// token's sub-block sums; then (d * isum - dmin * msum) * d_token, Q4_K's float steps.
void q2_Kx8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  const auto* b = static_cast<const block_q8_K*>(x);
  float acc[kPackRows] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* g = group + i * kPackedQ2_KBlockBytes;
    for (int r = 0; r < kPackRows; ++r) {
      int32_t isum = 0, msum = 0;
      for (int j = 0; j < 16; ++j) {
        const int s = j / 4;
        int32_t dot = 0;
        for (int c = 4 * (j % 4); c < 4 * (j % 4) + 4; ++c)
          for (int m = 0; m < 4; ++m)
            dot += ((g[kPackedQ2_KQuants + 32 * c + 4 * r + m] >> (2 * s)) & 3) * b[i].qs[64 * s + 4 * c + m];
        const uint8_t sm = g[kPackedQ2_KScales + 8 * j + r];
        int16_t sums[2];
        std::memcpy(sums, xoff + i * kPackedQ2_KXoff + j / 2, 4);
        isum += dot * (sm & 0x0f);
        msum += (sm >> 4) * sums[j % 2];
      }
      acc[r] = std::fma(k_superblock_sum(g, r, isum, msum), b[i].d, acc[r]);
    }
  }
  std::copy(acc, acc + kPackRows, y);
}

// Q6_K's weight (q - 32) of row r, element e of a packed super-block (packed.h).
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

void q4_0x8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  packed_dot_scalar<q4_0x8_row_dot, kPackedQ4_0BlockBytes>(n, group, x, xoff, y);
}
void q4_0x8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale) {
  packed_chunked_dot_scalar<q4_0x8_dot_scalar, block_q8_0, QK8_0, kPackedQ4_0BlockBytes, 1>(n, chunk, group, x, xoff, y,
                                                                                            scale);
}
void iq4_nl_x8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  packed_dot_scalar<iq4_nl_x8_row_dot, kPackedQ4_0BlockBytes>(n, group, x, xoff, y);
}
void iq4_nl_x8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                                  double* y, float scale) {
  packed_chunked_dot_scalar<iq4_nl_x8_dot_scalar, block_q8_0, QK8_0, kPackedQ4_0BlockBytes, 1>(n, chunk, group, x, xoff,
                                                                                               y, scale);
}
void q8_0x8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  packed_dot_scalar<q8_0x8_row_dot, kPackedQ8_0BlockBytes>(n, group, x, xoff, y);
}
void q8_0x8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale) {
  packed_chunked_dot_scalar<q8_0x8_dot_scalar, block_q8_0, QK8_0, kPackedQ8_0BlockBytes, 1>(n, chunk, group, x, xoff, y,
                                                                                            scale);
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
      acc[r] = std::fma(k_superblock_sum(g, r, isum, msum), b[i].d, acc[r]);
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
void q2_Kx8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale) {
  packed_chunked_dot_scalar<q2_Kx8_dot_scalar, block_q8_K, QK_K, kPackedQ2_KBlockBytes, kPackedQ2_KXoff>(
      n, chunk, group, x, xoff, y, scale);
}
void q3_Kx8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale) {
  packed_chunked_dot_scalar<q3_Kx8_dot_scalar, block_q8_K, QK_K, kPackedQ3_KBlockBytes, kPackedQ3_KXoff>(
      n, chunk, group, x, xoff, y, scale);
}
void q6_Kx8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                               double* y, float scale) {
  packed_chunked_dot_scalar<q6_Kx8_dot_scalar, block_q8_K, QK_K, kPackedQ6_KBlockBytes, 0>(n, chunk, group, x, xoff, y,
                                                                                           scale);
}

// ---- the packers ----

// Row r of one GGUF block into its group's packed block, per type (packed.h has the layouts).
// IQ4_NL's block is Q4_0's bytes (fp16 d, 16 bytes of nibbles), so Q4_0's packer serves it.
static_assert(sizeof(block_iq4_nl) == sizeof(block_q4_0) && QK4_NL == QK4_0);
void pack_q4_0_row(const uint8_t* block, int r, uint8_t* out) {
  const auto* blk = reinterpret_cast<const block_q4_0*>(block);
  std::memcpy(out + 2 * r, &blk->d, 2);
  for (int j = 0; j < 4; ++j) std::memcpy(out + kPackRows * 2 + 32 * j + 4 * r, blk->qs + 4 * j, 4);
}

void pack_q8_0_row(const uint8_t* block, int r, uint8_t* out) {
  const auto* blk = reinterpret_cast<const block_q8_0*>(block);
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
    const K4ScaleMin sm = k4_scale_min(s, blk->scales);
    out[kPackedQ4_KScales + 8 * s + r] = sm.scale;
    mins[s] = static_cast<int16_t>(sm.min);
  }
  for (int p = 0; p < 4; ++p) std::memcpy(out + kPackedQ4_KMins + 4 * (8 * p + r), mins + 2 * p, 4);
  for (int p = 0; p < 4; ++p)
    for (int j = 0; j < 8; ++j) std::memcpy(out + k4_quant_chunk<Fifth>(p, j) + 4 * r, blk->qs + 32 * p + 4 * j, 4);
}

void pack_q4_K_row(const uint8_t* block, int r, uint8_t* out) {
  pack_k4_row<false>(reinterpret_cast<const block_q4_K*>(block), r, out);
}

// GGUF keeps the fifth bit of element 64p + 32h + l at bit 2p + h of qh[l].
void pack_q5_K_row(const uint8_t* block, int r, uint8_t* out) {
  const auto* blk = reinterpret_cast<const block_q5_K*>(block);
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
        out[q5_K_fifth_chunk(p, h) + 4 * r + m] = bits;
      }
}

// GGUF keeps element 128h + 32s + l at bits 2s of qs[32h + l].
void pack_q2_K_row(const uint8_t* block, int r, uint8_t* out) {
  const auto* blk = reinterpret_cast<const block_q2_K*>(block);
  std::memcpy(out + 2 * r, &blk->d, 2);
  std::memcpy(out + 16 + 2 * r, &blk->dmin, 2);
  for (int j = 0; j < 16; ++j) out[kPackedQ2_KScales + 8 * j + r] = blk->scales[j];
  for (int c = 0; c < 16; ++c)
    for (int m = 0; m < 4; ++m) {
      uint8_t bits = 0;
      for (int s = 0; s < 4; ++s) {
        const int e = 64 * s + 4 * c + m;
        bits |= static_cast<uint8_t>(((blk->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3) << (2 * s));
      }
      out[kPackedQ2_KQuants + 32 * c + 4 * r + m] = bits;
    }
}

void pack_q6_K_row(const uint8_t* block, int r, uint8_t* out) {
  const auto* blk = reinterpret_cast<const block_q6_K*>(block);
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
    out[kPackedQ6_KScales + 8 * s + r] = static_cast<uint8_t>(blk->scales[s]);
    int32_t sum = 0;
    for (int e = 16 * s; e < 16 * s + 16; ++e) sum += w[e];
    offset += 128 * blk->scales[s] * sum;
  }
  std::memcpy(out + kPackedQ6_KOffsets + 4 * r, &offset, 4);
  for (int k = 0; k < 64; ++k) {
    const int quarter = k / 16, c = k % 16;
    for (int m = 0; m < 4; ++m) {
      const uint8_t q = static_cast<uint8_t>(w[4 * k + m] + 32);
      uint8_t& low = out[q6_K_low_chunk(c + 16 * (quarter & 1)) + 4 * r + m];
      uint8_t& high = out[q6_K_high_chunk(c) + 4 * r + m];
      if (quarter == 0) low = high = 0;  // this byte's first write (pieces c and c + 16 come first)
      if (quarter == 1) low = 0;
      low |= static_cast<uint8_t>((q & 0x0f) << (4 * (quarter >> 1)));
      high |= static_cast<uint8_t>((q >> 4) << (2 * quarter));
    }
  }
}

// What each type's kernels need beside a token's quants (PackedFormat::prepare_token).
// Q4_0 and Q8_0: per Q8_0 block, the storage offset times the sum of the token's quants.
template <int32_t Offset>
void prepare_q8_0_token(uint8_t* x, int64_t blocks, int32_t* xoff) {
  const auto* b = reinterpret_cast<const block_q8_0*>(x);
  for (int64_t i = 0; i < blocks; ++i) {
    int32_t s = 0;
    for (int8_t q : b[i].qs) s += q;
    xoff[i] = Offset * s;
  }
}

// Q4_K and Q5_K: per Q8_K block, the 4 sub-block pairs' sums as int16 pairs (against the mins).
void prepare_k4_token(uint8_t* x, int64_t blocks, int32_t* xoff) {
  const auto* b = reinterpret_cast<const block_q8_K*>(x);
  for (int64_t i = 0; i < blocks; ++i)
    for (int p = 0; p < 4; ++p) {
      const int16_t* s = b[i].bsums + 4 * p;
      const int16_t pair[2] = {static_cast<int16_t>(s[0] + s[1]), static_cast<int16_t>(s[2] + s[3])};
      std::memcpy(xoff + i * kPackedQ4_KXoff + p, pair, 4);
    }
}

// Q2_K: per Q8_K block, the 16 sub-block sums as 8 int16 pairs (against the mins).
void prepare_q2_K_token(uint8_t* x, int64_t blocks, int32_t* xoff) {
  const auto* b = reinterpret_cast<const block_q8_K*>(x);
  for (int64_t i = 0; i < blocks; ++i) std::memcpy(xoff + i * kPackedQ2_KXoff, b[i].bsums, 4 * kPackedQ2_KXoff);
}

// Q6_K: no xoff; the quants are stored +128 (unsigned) for VNNI's unsigned x signed dot.
void prepare_q6_K_token(uint8_t* x, int64_t blocks, int32_t*) {
  auto* b = reinterpret_cast<block_q8_K*>(x);
  for (int64_t i = 0; i < blocks; ++i)
    for (int8_t& q : b[i].qs) q = static_cast<int8_t>(static_cast<uint8_t>(q) ^ 0x80);
}

constexpr PackedFormat kFormats[] = {
    {GgmlType::Q4_0,
     QK4_0,
     kPackedQ4_0BlockBytes,
     1,
     pack_q4_0_row,
     prepare_q8_0_token<kPackedQ4_0Offset>,
     {q4_0x8_dot_scalar, q4_0x8_chunked_dot_scalar}},
    {GgmlType::IQ4_NL,
     QK4_NL,
     kPackedQ4_0BlockBytes,
     1,
     pack_q4_0_row,
     prepare_q8_0_token<kPackedIq4NlOffset>,
     {iq4_nl_x8_dot_scalar, iq4_nl_x8_chunked_dot_scalar}},
    {GgmlType::Q8_0,
     QK8_0,
     kPackedQ8_0BlockBytes,
     1,
     pack_q8_0_row,
     prepare_q8_0_token<kPackedQ8_0Offset>,
     {q8_0x8_dot_scalar, q8_0x8_chunked_dot_scalar}},
    {GgmlType::Q4_K,
     QK_K,
     kPackedQ4_KBlockBytes,
     kPackedQ4_KXoff,
     pack_q4_K_row,
     prepare_k4_token,
     {q4_Kx8_dot_scalar, q4_Kx8_chunked_dot_scalar}},
    {GgmlType::Q5_K,
     QK_K,
     kPackedQ5_KBlockBytes,
     kPackedQ4_KXoff,
     pack_q5_K_row,
     prepare_k4_token,
     {q5_Kx8_dot_scalar, q5_Kx8_chunked_dot_scalar}},
    {GgmlType::Q2_K,
     QK_K,
     kPackedQ2_KBlockBytes,
     kPackedQ2_KXoff,
     pack_q2_K_row,
     prepare_q2_K_token,
     {q2_Kx8_dot_scalar, q2_Kx8_chunked_dot_scalar}},
    {GgmlType::Q3_K,
     QK_K,
     kPackedQ3_KBlockBytes,
     kPackedQ3_KXoff,
     pack_q3_K_row,
     prepare_q3_K_token,
     {q3_Kx8_dot_scalar, q3_Kx8_chunked_dot_scalar}},
    {GgmlType::Q6_K,
     QK_K,
     kPackedQ6_KBlockBytes,
     0,
     pack_q6_K_row,
     prepare_q6_K_token,
     {q6_Kx8_dot_scalar, q6_Kx8_chunked_dot_scalar}},
    {GgmlType::IQ4_XS,
     QK_K,
     kPackedIq4XsBlockBytes,
     kPackedIq4XsXoff,
     pack_iq4_xs_row,
     prepare_iq4_xs_token,
     {iq4_xs_x8_dot_scalar, iq4_xs_x8_chunked_dot_scalar}},
};

}  // namespace

const PackedFormat* packed_format(GgmlType t) {
  for (const PackedFormat& f : kFormats)
    if (f.type == t) return &f;
  return nullptr;
}

std::string packable_type_names() {
  std::string names;
  for (const PackedFormat& f : kFormats) names += (names.empty() ? "" : " ") + std::string(gguf::type_name(f.type));
  return names;
}

}  // namespace detail

bool is_packable(GgmlType t) { return detail::packed_format(t) != nullptr; }

bool should_pack(const Matrix& w) {
  const detail::PackedFormat* f = detail::packed_format(w.type);
  return w.layout == Layout::Rows && f && w.rows % kPackRows == 0 && w.rows > 0 && w.cols % f->block_cols == 0 &&
         detail::active_table().packed[detail::slot(w.type)].dot != nullptr;
}

size_t packed_bytes(const Matrix& w) {
  const detail::PackedFormat* f = detail::packed_format(w.type);
  if (!f) return 0;
  const size_t blocks = static_cast<size_t>(w.rows / kPackRows) * static_cast<size_t>(w.cols / f->block_cols);
  return blocks * f->block_bytes;
}

Matrix row_slice(const Matrix& w, int64_t begin, int64_t end) {
  if (begin < 0 || end > w.rows || begin >= end || (w.layout == Layout::Packed8 && begin % kPackRows != 0))
    throw Error("row_slice got rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") of a matrix of " +
                std::to_string(w.rows) + " rows; a caller cut it wrongly");
  Matrix s = w;
  s.rows = end - begin;
  if (w.layout == Layout::Packed8) {
    Matrix before = w;
    before.rows = begin;
    s.data = w.data + (begin == 0 ? 0 : packed_bytes(before));
  } else {
    s.data = w.data + static_cast<size_t>(begin) * w.row_stride;
  }
  return s;
}

Matrix pack_rows8(const Matrix& w, uint8_t* dst) {
  const detail::PackedFormat* f = detail::packed_format(w.type);
  if (w.layout != Layout::Rows || !f || w.rows % kPackRows != 0 || w.cols % f->block_cols != 0)
    throw Error("pack_rows8 needs a matrix of whole groups of 8 rows in one of " + detail::packable_type_names() +
                " (got " + std::string(gguf::type_name(w.type)) + ", " + std::to_string(w.rows) + " x " +
                std::to_string(w.cols) + ")");
  const int64_t nb = w.cols / f->block_cols;
  const size_t gguf_block_bytes = gguf::type_traits(w.type).type_size;
  for (int64_t g = 0; g < w.rows / kPackRows; ++g)
    for (int64_t i = 0; i < nb; ++i) {
      uint8_t* out = dst + (g * nb + i) * f->block_bytes;
      for (int r = 0; r < kPackRows; ++r)
        f->pack(w.data + (g * kPackRows + r) * w.row_stride + i * gguf_block_bytes, r, out);
    }
  Matrix p = w;
  p.data = dst;
  p.row_stride = 0;
  p.layout = Layout::Packed8;
  return p;
}

}  // namespace clusterctl::kernels
