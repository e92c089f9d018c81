// Q3_K's Layout::Packed8 format (packed.h has the layout): its packer, what its kernels need
// beside a token's quants, and its scalar kernel, the reference every ISA's Q3_K kernels equal
// bit for bit.
#include <cmath>
#include <cstring>

#include "worker/kernels/blocks.h"
#include "worker/kernels/packed.h"
#include "worker/kernels/quant_ref.h"

namespace clusterctl::kernels::detail {

// GGUF keeps the low two bits of element e (half h = e / 128) at bits 2 * ((e % 128) / 32) of
// qs[32h + e % 32], its third bit at bit e / 32 of hmask[e % 32] (set: q, clear: q - 4).
void pack_q3_K_row(const uint8_t* block, int r, uint8_t* out) {
  const auto* blk = reinterpret_cast<const block_q3_K*>(block);
  std::memcpy(out + 2 * r, &blk->d, 2);
  for (int j = 0; j < 16; ++j) out[kPackedQ3_KScales + 8 * j + r] = static_cast<uint8_t>(q3k_scale(j, blk->scales));
  for (int q = 0; q < 4; ++q) {
    for (int h = 0; h < 2; ++h)
      for (int m = 0; m < 4; ++m) out[q3_K_high_chunk(q, h) + 4 * r + m] = 0;
    for (int k = 0; k < 4; ++k)
      for (int m = 0; m < 4; ++m) {
        uint8_t low = 0, third = 0;
        for (int s = 0; s < 4; ++s) {
          const int e = 64 * s + 16 * q + 4 * k + m;
          low |= static_cast<uint8_t>(((blk->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3) << (2 * s));
          third |= static_cast<uint8_t>(((blk->hmask[e % 32] >> (e / 32)) & 1) << (4 * (k % 2) + s));
        }
        out[q3_K_low_chunk(q, k) + 4 * r + m] = low;
        out[q3_K_high_chunk(q, k / 2) + 4 * r + m] |= third;
      }
  }
}

// Per Q8_K block and sub-block j: -4 * the token's sum of sub-block j in the low 16 bits.
void prepare_q3_K_token(uint8_t* x, int64_t blocks, int32_t* xoff) {
  const auto* b = reinterpret_cast<const block_q8_K*>(x);
  for (int64_t i = 0; i < blocks; ++i)
    for (int j = 0; j < 16; ++j)
      xoff[i * kPackedQ3_KXoff + j] = static_cast<uint16_t>(static_cast<int16_t>(-4 * b[i].bsums[j]));
}

// Per sub-block (its 3-bit weights x token, less 4 * its token sum) times the scale; then
// acc += isum * (d * d_token).
void q3_Kx8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
  const auto* b = static_cast<const block_q8_K*>(x);
  float acc[kPackRows] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8_t* g = group + i * kPackedQ3_KBlockBytes;
    for (int r = 0; r < kPackRows; ++r) {
      int32_t isum = 0;
      for (int j = 0; j < 16; ++j) {
        const int s = j / 4, q = j % 4;
        int32_t dot = static_cast<int16_t>(xoff[i * kPackedQ3_KXoff + j] & 0xffff);
        for (int k = 0; k < 4; ++k)
          for (int m = 0; m < 4; ++m) {
            const int low = (g[q3_K_low_chunk(q, k) + 4 * r + m] >> (2 * s)) & 3;
            const int third = (g[q3_K_high_chunk(q, k / 2) + 4 * r + m] >> (4 * (k % 2) + s)) & 1;
            dot += (low | third << 2) * b[i].qs[64 * s + 16 * q + 4 * k + m];
          }
        isum += dot * static_cast<int8_t>(g[kPackedQ3_KScales + 8 * j + r]);
      }
      fp16_t d;
      std::memcpy(&d, g + 2 * r, 2);
      acc[r] = std::fma(static_cast<float>(isum), fp16_to_fp32(d) * b[i].d, acc[r]);
    }
  }
  for (int r = 0; r < kPackRows; ++r) y[r] = acc[r];
}

}  // namespace clusterctl::kernels::detail
