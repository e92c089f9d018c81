#include "tests/unit/kernels/kernels_test_data.h"

#include <cstring>

#include "worker/common/error.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/half.h"

namespace clusterctl::kernels::test {
namespace {

using detail::float_to_bf16;
using detail::float_to_half;

// Sets the fp16 field at byte `offset` of every block to a finite value from `dist`.
template <typename Dist>
void set_half_field(std::vector<uint8_t>& data, size_t block_bytes, size_t offset, Dist dist, std::mt19937& rng) {
  for (size_t b = 0; b + block_bytes <= data.size(); b += block_bytes) {
    const uint16_t h = float_to_half(dist(rng));
    std::memcpy(&data[b + offset], &h, 2);
  }
}

}  // namespace

std::vector<uint8_t> random_weights(GgmlType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  const size_t bytes = gguf::row_bytes(type, static_cast<uint64_t>(cols)) * static_cast<size_t>(rows);
  std::vector<uint8_t> data(bytes);
  std::normal_distribution<float> normal(0.f, 1.f);
  if (type == GgmlType::F32) {
    for (size_t i = 0; i < bytes; i += 4) {
      const float f = normal(rng);
      std::memcpy(&data[i], &f, 4);
    }
    return data;
  }
  if (type == GgmlType::F16 || type == GgmlType::BF16) {
    for (size_t i = 0; i < bytes; i += 2) {
      const uint16_t h = type == GgmlType::F16 ? float_to_half(normal(rng)) : float_to_bf16(normal(rng));
      std::memcpy(&data[i], &h, 2);
    }
    return data;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : data) b = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> scale(0.001f, 0.02f);
  std::uniform_real_distribution<float> offset(-0.1f, 0.1f);
  switch (type) {
    case GgmlType::Q4_0:
      set_half_field(data, sizeof(block_q4_0), offsetof(block_q4_0, d), scale, rng);
      break;
    case GgmlType::Q5_0:
      set_half_field(data, sizeof(block_q5_0), offsetof(block_q5_0, d), scale, rng);
      break;
    case GgmlType::Q8_0:
      set_half_field(data, sizeof(block_q8_0), offsetof(block_q8_0, d), scale, rng);
      break;
    case GgmlType::Q4_1:
      set_half_field(data, sizeof(block_q4_1), offsetof(block_q4_1, d), scale, rng);
      set_half_field(data, sizeof(block_q4_1), offsetof(block_q4_1, m), offset, rng);
      break;
    case GgmlType::Q5_1:
      set_half_field(data, sizeof(block_q5_1), offsetof(block_q5_1, d), scale, rng);
      set_half_field(data, sizeof(block_q5_1), offsetof(block_q5_1, m), offset, rng);
      break;
    case GgmlType::Q4_K:
      set_half_field(data, sizeof(block_q4_K), offsetof(block_q4_K, d), scale, rng);
      set_half_field(data, sizeof(block_q4_K), offsetof(block_q4_K, dmin), scale, rng);
      break;
    case GgmlType::Q5_K:
      set_half_field(data, sizeof(block_q5_K), offsetof(block_q5_K, d), scale, rng);
      set_half_field(data, sizeof(block_q5_K), offsetof(block_q5_K, dmin), scale, rng);
      break;
    case GgmlType::Q6_K:
      set_half_field(data, sizeof(block_q6_K), offsetof(block_q6_K, d), scale, rng);
      break;
    case GgmlType::Q2_K:
      set_half_field(data, sizeof(block_q2_K), offsetof(block_q2_K, d), scale, rng);
      set_half_field(data, sizeof(block_q2_K), offsetof(block_q2_K, dmin), scale, rng);
      break;
    case GgmlType::Q3_K:
      set_half_field(data, sizeof(block_q3_K), offsetof(block_q3_K, d), scale, rng);
      break;
    case GgmlType::IQ4_NL:
      set_half_field(data, sizeof(block_iq4_nl), offsetof(block_iq4_nl, d), scale, rng);
      break;
    case GgmlType::IQ4_XS:
      set_half_field(data, sizeof(block_iq4_xs), offsetof(block_iq4_xs, d), scale, rng);
      break;
    case GgmlType::IQ2_XXS:  // the IQ grid types: every other byte is a full-range bit field
    case GgmlType::IQ2_XS:
    case GgmlType::IQ2_S:
    case GgmlType::IQ3_XXS:
    case GgmlType::IQ3_S:
    case GgmlType::IQ1_S:
      set_half_field(data, gguf::type_traits(type).type_size, 0, scale, rng);
      break;
    case GgmlType::IQ1_M:  // its fp16 scale is the top nibbles of the four scale words
      for (size_t b = 0; b + sizeof(block_iq1_m) <= data.size(); b += sizeof(block_iq1_m)) {
        const uint16_t h = float_to_half(scale(rng));
        for (int k = 0; k < 4; ++k) {
          uint8_t& top = data[b + offsetof(block_iq1_m, scales) + 2 * k + 1];
          top = static_cast<uint8_t>((top & 0x0f) | (((h >> (4 * k)) & 0xf) << 4));
        }
      }
      break;
    default:
      throw Error("no random test weights for type " + std::string(gguf::type_name(type)));
  }
  return data;
}

std::vector<float> random_activations(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_int_distribution<int> pick(0, 63);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = pick(rng) == 0 ? normal(rng) * 20.f : normal(rng);
  return x;
}

std::vector<Isa> simd_isas() {
  std::vector<Isa> out;
  const Isa saved = active_isa();
  for (Isa isa : {Isa::Avx2, Isa::Avx512, Isa::Neon}) {
    try {
      set_active_isa(isa);
      out.push_back(isa);
    } catch (const Error&) {
    }
  }
  set_active_isa(saved);
  return out;
}

std::vector<Isa> all_isas() {
  std::vector<Isa> isas = simd_isas();
  isas.insert(isas.begin(), Isa::Scalar);
  return isas;
}

}  // namespace clusterctl::kernels::test
