// Dequantisation of the 1-3-bit IQ formats, value for value ggml's dequantize_row_iq* (the same
// float operations in the same order, so the same bits): each group of 8 (or 4) elements is a
// grid entry (iq_grids.h) times its sub-block scale, with signs (IQ2, IQ3) or a +-delta (IQ1).
#include "worker/kernels/quant_ref_iq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "worker/common/error.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/half.h"
#include "worker/kernels/iq_grids.h"
#include "worker/kernels/quant_ref.h"

namespace clusterctl::kernels::detail {
namespace {

inline uint8_t grid_byte(uint64_t entry, int j) { return static_cast<uint8_t>(entry >> (8 * j)); }
inline int8_t grid_sbyte(uint64_t entry, int j) { return static_cast<int8_t>(entry >> (8 * j)); }
inline float sign_of(uint8_t signs, int j) { return (signs >> j) & 1 ? -1.f : 1.f; }

// 8 elements: db * magnitude * sign.
inline void put_signed8(float db, uint64_t entry, uint8_t signs, float* y) {
  for (int j = 0; j < 8; ++j) y[j] = db * grid_byte(entry, j) * sign_of(signs, j);
}

void dequantize_iq2_xxs(const block_iq2_xxs* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(x[i].d);
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      uint32_t aux[2];
      std::memcpy(aux, x[i].qs + 4 * ib, sizeof aux);
      const float db = d * (0.5f + (aux[1] >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l, y += 8)
        put_signed8(db, kIq2xxsGrid[(aux[0] >> (8 * l)) & 255], iq_signs_of((aux[1] >> (7 * l)) & 127), y);
    }
  }
}

void dequantize_iq2_xs(const block_iq2_xs* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(x[i].d);
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const float db[2] = {d * (0.5f + (x[i].scales[ib] & 0xf)) * 0.25f, d * (0.5f + (x[i].scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint16_t q = x[i].qs[4 * ib + l];
        put_signed8(db[l / 2], kIq2xsGrid[q & 511], iq_signs_of(q >> 9), y);
      }
    }
  }
}

void dequantize_iq2_s(const block_iq2_s* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(x[i].d);
    const uint8_t* signs = x[i].qs + QK_K / 8;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const float db[2] = {d * (0.5f + (x[i].scales[ib] & 0xf)) * 0.25f, d * (0.5f + (x[i].scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8)
        put_signed8(db[l / 2], kIq2sGrid[iq2s_index(x[i].qs, x[i].qh, ib, l)], signs[4 * ib + l], y);
    }
  }
}

// 4 + 4 elements of two IQ3 grid entries with 8 signs.
inline void put_signed4x2(float db, uint32_t e1, uint32_t e2, uint8_t signs, float* y) {
  for (int j = 0; j < 4; ++j) {
    y[j + 0] = db * grid_byte(e1, j) * sign_of(signs, j);
    y[j + 4] = db * grid_byte(e2, j) * sign_of(signs, j + 4);
  }
}

void dequantize_iq3_xxs(const block_iq3_xxs* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(x[i].d);
    const uint8_t* qs = x[i].qs;
    const uint8_t* scales_and_signs = x[i].qs + QK_K / 4;
    for (int ib = 0; ib < QK_K / 32; ++ib, qs += 8) {
      uint32_t aux;
      std::memcpy(&aux, scales_and_signs + 4 * ib, sizeof aux);
      const float db = d * (0.5f + (aux >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l, y += 8)
        put_signed4x2(db, kIq3xxsGrid[qs[2 * l]], kIq3xxsGrid[qs[2 * l + 1]], iq_signs_of((aux >> (7 * l)) & 127), y);
    }
  }
}

void dequantize_iq3_s(const block_iq3_s* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(x[i].d);
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const float db = d * (1 + 2 * ((x[i].scales[ib / 2] >> (4 * (ib % 2))) & 0xf));
      for (int l = 0; l < 4; ++l, y += 8)
        put_signed4x2(db, kIq3sGrid[iq3s_index(x[i].qs, x[i].qh, ib, 2 * l)],
                      kIq3sGrid[iq3s_index(x[i].qs, x[i].qh, ib, 2 * l + 1)], x[i].signs[4 * ib + l], y);
    }
  }
}

// 8 elements of the {-1, 0, 1} grid: dl * (value + delta).
inline void put_iq1(float dl, uint64_t entry, float delta, float* y) {
  for (int j = 0; j < 8; ++j) y[j] = dl * (grid_sbyte(entry, j) + delta);
}

void dequantize_iq1_s(const block_iq1_s* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(x[i].d);
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const uint16_t qh = x[i].qh[ib];
      const float dl = d * (2 * ((qh >> 12) & 7) + 1);
      const float delta = qh & 0x8000 ? -kIq1Delta : kIq1Delta;
      for (int l = 0; l < 4; ++l, y += 8) put_iq1(dl, kIq1sGrid[iq1s_index(x[i].qs, x[i].qh, ib, l)], delta, y);
    }
  }
}

void dequantize_iq1_m(const block_iq1_m* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = half_to_float(iq1m_scale_bits(x[i].scales));
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      for (int l = 0; l < 4; ++l, y += 8) {
        const float dl = d * (2 * iq1m_subscale(x[i].scales, 2 * ib + l / 2) + 1);
        const float delta = iq1m_delta_negative(x[i].qh, ib, l) ? -kIq1Delta : kIq1Delta;
        put_iq1(dl, kIq1sGrid[iq1m_index(x[i].qs, x[i].qh, ib, l)], delta, y);
      }
    }
  }
}

// IQ1_M keeps its fp16 scale in the top nibbles of the four scale words (iq1m_scale_bits).
void set_iq1m_scale(block_iq1_m& b, uint16_t h) {
  for (int k = 0; k < 4; ++k) {
    uint16_t w;
    std::memcpy(&w, b.scales + 2 * k, 2);
    w = static_cast<uint16_t>((w & 0x0fff) | (((h >> (4 * k)) & 0xf) << 12));
    std::memcpy(b.scales + 2 * k, &w, 2);
  }
}

void set_scale(GgmlType t, uint8_t* block, uint16_t h) {
  if (t == GgmlType::IQ1_M) return set_iq1m_scale(*reinterpret_cast<block_iq1_m*>(block), h);
  std::memcpy(block, &h, 2);  // every other IQ grid type starts with its fp16 d
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

void dequantize_iq_grid(GgmlType t, const void* src, float* dst, int64_t nb) {
  switch (t) {
    case GgmlType::IQ2_XXS:
      return dequantize_iq2_xxs(static_cast<const block_iq2_xxs*>(src), dst, nb);
    case GgmlType::IQ2_XS:
      return dequantize_iq2_xs(static_cast<const block_iq2_xs*>(src), dst, nb);
    case GgmlType::IQ2_S:
      return dequantize_iq2_s(static_cast<const block_iq2_s*>(src), dst, nb);
    case GgmlType::IQ3_XXS:
      return dequantize_iq3_xxs(static_cast<const block_iq3_xxs*>(src), dst, nb);
    case GgmlType::IQ3_S:
      return dequantize_iq3_s(static_cast<const block_iq3_s*>(src), dst, nb);
    case GgmlType::IQ1_S:
      return dequantize_iq1_s(static_cast<const block_iq1_s*>(src), dst, nb);
    case GgmlType::IQ1_M:
      return dequantize_iq1_m(static_cast<const block_iq1_m*>(src), dst, nb);
    default:
      throw Error("dequantize_iq_grid: " + std::string(gguf::type_name(t)) + " is not an IQ grid type");
  }
}

}  // namespace clusterctl::kernels::detail

namespace clusterctl::kernels {

bool is_iq_grid_type(GgmlType t) {
  switch (t) {
    case GgmlType::IQ2_XXS:
    case GgmlType::IQ2_XS:
    case GgmlType::IQ2_S:
    case GgmlType::IQ3_XXS:
    case GgmlType::IQ3_S:
    case GgmlType::IQ1_S:
    case GgmlType::IQ1_M:
      return true;
    default:
      return false;
  }
}

void random_iq_blocks(GgmlType t, uint64_t seed, float rms, void* dst, int64_t n) {
  if (!is_iq_grid_type(t) || n % QK_K != 0)
    throw Error("random_iq_blocks: " + std::string(gguf::type_name(t)) + " rows of " + std::to_string(n) +
                " values: only the IQ grid types, in whole blocks of 256");
  const size_t block_bytes = gguf::type_traits(t).type_size;
  auto* out = static_cast<uint8_t*>(dst);
  uint64_t state = seed;
  float y[QK_K];
  for (int64_t b = 0; b < n / QK_K; ++b) {
    uint8_t* block = out + static_cast<size_t>(b) * block_bytes;
    for (size_t i = 0; i < block_bytes; i += 8) {
      const uint64_t r = detail::splitmix64(state);
      std::memcpy(block + i, &r, std::min<size_t>(8, block_bytes - i));
    }
    // Decode at d = 1, then scale d so the block's values have the requested RMS.
    detail::set_scale(t, block, detail::float_to_half(1.0f));
    detail::dequantize_iq_grid(t, block, y, 1);
    double sumsq = 0;
    for (float v : y) sumsq += static_cast<double>(v) * v;
    const double block_rms = std::sqrt(sumsq / QK_K);
    detail::set_scale(t, block, detail::float_to_half(block_rms > 0 ? static_cast<float>(rms / block_rms) : 0.f));
  }
}

}  // namespace clusterctl::kernels
