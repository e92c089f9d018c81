// Layout::Packed8 IQ4_XS (packed.h has the layout): its packer, what a token needs beside its
// quants, and the scalar kernels (the reference the SIMD kernels match bit for bit).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "worker/kernels/packed.h"
#include "worker/kernels/quant_ref.h"

namespace clusterctl::kernels::detail {

// Row r's sub-block scales (6-bit, less 32) as bytes [sub-block][row], its nibble bytes in chunks
// (sub-block ib, j) of 4 bytes per row.
void pack_iq4_xs_row(const uint8_t* block, int r, uint8_t* out) {
  const auto* blk = reinterpret_cast<const block_iq4_xs*>(block);
  std::memcpy(out + 2 * r, &blk->d, 2);
  for (int ib = 0; ib < 8; ++ib) {
    out[kPackedIq4XsScales + 8 * ib + r] = static_cast<uint8_t>(iq4xs_scale(ib, blk->scales_l, blk->scales_h));
    for (int j = 0; j < 4; ++j) std::memcpy(out + iq4_xs_chunk(ib, j) + 4 * r, blk->qs + 16 * ib + 4 * j, 4);
  }
}

// Per Q8_K block, 128 times the sum of each 32-element sub-block's quants: the share of the
// table values' +128 in an unsigned x signed dot.
void prepare_iq4_xs_token(uint8_t* x, int64_t blocks, int32_t* xoff) {
  const auto* b = reinterpret_cast<const block_q8_K*>(x);
  for (int64_t i = 0; i < blocks; ++i)
    for (int ib = 0; ib < 8; ++ib)
      xoff[i * kPackedIq4XsXoff + ib] = kPackedIq4NlOffset * (b[i].bsums[2 * ib] + b[i].bsums[2 * ib + 1]);
}

// Per row and sub-block: the table values (+128) x token dot less xoff, times the scale; then
// acc += isum * (d * d_token).
void iq4_xs_x8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  const auto* b = static_cast<const block_q8_K*>(x);
  float acc[kPackRows] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* g = group + i * kPackedIq4XsBlockBytes;
    for (int r = 0; r < kPackRows; ++r) {
      int32_t isum = 0;
      for (int ib = 0; ib < 8; ++ib) {
        int32_t dot = 0;
        for (int j = 0; j < 4; ++j)
          for (int m = 0; m < 4; ++m) {
            const uint8_t q = g[iq4_xs_chunk(ib, j) + 4 * r + m];
            dot += (kValuesIq4nl[q & 0x0f] + kPackedIq4NlOffset) * b[i].qs[32 * ib + 4 * j + m] +
                   (kValuesIq4nl[q >> 4] + kPackedIq4NlOffset) * b[i].qs[32 * ib + 16 + 4 * j + m];
          }
        isum += (dot - xoff[i * kPackedIq4XsXoff + ib]) * static_cast<int8_t>(g[kPackedIq4XsScales + 8 * ib + r]);
      }
      fp16_t d;
      std::memcpy(&d, g + 2 * r, 2);
      acc[r] = std::fma(static_cast<float>(isum), fp16_to_fp32(d) * b[i].d, acc[r]);
    }
  }
  std::copy(acc, acc + kPackRows, y);
}

void iq4_xs_x8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff,
                                  double* y, float scale) {
  std::fill(y, y + kPackRows, 0.0);
  for (int64_t k = 0; k < n; k += chunk) {
    float part[kPackRows];
    iq4_xs_x8_dot_scalar(std::min(chunk, n - k), group + k / QK_K * kPackedIq4XsBlockBytes,
                         static_cast<const block_q8_K*>(x) + k / QK_K, xoff + k / QK_K * kPackedIq4XsXoff, part);
    for (int r = 0; r < kPackRows; ++r) y[r] += part[r] * scale;
  }
}

}  // namespace clusterctl::kernels::detail
