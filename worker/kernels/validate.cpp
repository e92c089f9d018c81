// Load-time check of quantised blocks: a scale field that decodes to NaN or infinity would turn
// every dot product with its block into garbage (no quantiser writes one; a corrupt or
// hand-edited file can), so such a block is refused with where it is.
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

#include "worker/common/error.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/kernels.h"
#include "worker/kernels/quant_ref.h"

namespace clusterctl::kernels {
namespace {

struct HalfFields {
  size_t block_bytes = 0;
  int n = 0;  // fp16 scale fields per block: at offsets[0..n) named names[0..n)
  size_t offsets[2] = {};
  const char* names[2] = {};
};

// The fp16 fields of each block type (blocks.h); types without any (F32/F16/BF16) give none.
HalfFields half_fields(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0:
      return {sizeof(block_q4_0), 1, {offsetof(block_q4_0, d)}, {"d"}};
    case GgmlType::Q5_0:
      return {sizeof(block_q5_0), 1, {offsetof(block_q5_0, d)}, {"d"}};
    case GgmlType::Q8_0:
      return {sizeof(block_q8_0), 1, {offsetof(block_q8_0, d)}, {"d"}};
    case GgmlType::Q4_1:
      return {sizeof(block_q4_1), 2, {offsetof(block_q4_1, d), offsetof(block_q4_1, m)}, {"d", "m"}};
    case GgmlType::Q5_1:
      return {sizeof(block_q5_1), 2, {offsetof(block_q5_1, d), offsetof(block_q5_1, m)}, {"d", "m"}};
    case GgmlType::Q2_K:
      return {sizeof(block_q2_K), 2, {offsetof(block_q2_K, d), offsetof(block_q2_K, dmin)}, {"d", "dmin"}};
    case GgmlType::Q3_K:
      return {sizeof(block_q3_K), 1, {offsetof(block_q3_K, d)}, {"d"}};
    case GgmlType::Q4_K:
      return {sizeof(block_q4_K), 2, {offsetof(block_q4_K, d), offsetof(block_q4_K, dmin)}, {"d", "dmin"}};
    case GgmlType::Q5_K:
      return {sizeof(block_q5_K), 2, {offsetof(block_q5_K, d), offsetof(block_q5_K, dmin)}, {"d", "dmin"}};
    case GgmlType::Q6_K:
      return {sizeof(block_q6_K), 1, {offsetof(block_q6_K, d)}, {"d"}};
    case GgmlType::IQ4_NL:
      return {sizeof(block_iq4_nl), 1, {offsetof(block_iq4_nl, d)}, {"d"}};
    case GgmlType::IQ4_XS:
      return {sizeof(block_iq4_xs), 1, {offsetof(block_iq4_xs, d)}, {"d"}};
    // The 1-3-bit IQ types: d is their only float field. Their grid indices, signs and sub-block
    // scales are full-width bit fields into tables of exactly 2^bits entries (blocks.h), so no
    // byte pattern indexes out of range and there is nothing else to check.
    case GgmlType::IQ2_XXS:
      return {sizeof(block_iq2_xxs), 1, {offsetof(block_iq2_xxs, d)}, {"d"}};
    case GgmlType::IQ2_XS:
      return {sizeof(block_iq2_xs), 1, {offsetof(block_iq2_xs, d)}, {"d"}};
    case GgmlType::IQ2_S:
      return {sizeof(block_iq2_s), 1, {offsetof(block_iq2_s, d)}, {"d"}};
    case GgmlType::IQ3_XXS:
      return {sizeof(block_iq3_xxs), 1, {offsetof(block_iq3_xxs, d)}, {"d"}};
    case GgmlType::IQ3_S:
      return {sizeof(block_iq3_s), 1, {offsetof(block_iq3_s, d)}, {"d"}};
    case GgmlType::IQ1_S:
      return {sizeof(block_iq1_s), 1, {offsetof(block_iq1_s, d)}, {"d"}};
    case GgmlType::IQ1_M:  // d is spread over the top nibbles of the scale words (scale_bits)
      return {sizeof(block_iq1_m), 1, {offsetof(block_iq1_m, scales)}, {"d (top nibbles of scales)"}};
    default:
      return {};
  }
}

// The fp16 bits of the scale field at p.
fp16_t scale_bits(GgmlType t, const uint8_t* p) {
  if (t == GgmlType::IQ1_M) return detail::iq1m_scale_bits(p);
  fp16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

}  // namespace

void validate_blocks(const Matrix& m, const std::string& what) {
  if (m.layout != Layout::Rows) return;  // packed matrices were validated before packing
  const HalfFields f = half_fields(m.type);
  if (f.block_bytes == 0) return;
  const int64_t block = gguf::type_traits(m.type).block_size;
  const int64_t n_blocks = m.cols / block;
  for (int64_t r = 0; r < m.rows; ++r) {
    const uint8_t* row = m.data + static_cast<size_t>(r) * m.row_stride;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = row + static_cast<size_t>(b) * f.block_bytes;
      for (int k = 0; k < f.n; ++k) {
        const fp16_t h = scale_bits(m.type, blk + f.offsets[k]);
        if ((h & 0x7c00u) == 0x7c00u) {
          char bits[8];
          std::snprintf(bits, sizeof bits, "0x%04x", static_cast<unsigned>(h));
          throw Error(what + ": row " + std::to_string(r) + ", " + std::string(gguf::type_name(m.type)) + " block " +
                      std::to_string(b) + " (columns " + std::to_string(b * block) + ".." +
                      std::to_string((b + 1) * block - 1) + ") has scale " + f.names[k] + " = " + bits + ", which is " +
                      ((h & 0x03ffu) ? "NaN" : "infinite") +
                      ": the file is corrupt (no quantiser writes such a block); re-download or requantize it");
        }
      }
    }
  }
}

}  // namespace clusterctl::kernels
