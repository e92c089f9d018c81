#pragma once
// Test inputs for the kernel tests: weight rows of every computable type made of random bytes
// with their fp16 scale fields set to finite values (random bytes would give NaN and infinity
// scales, which no quantiser produces), and random activations.
#include <cstdint>
#include <random>
#include <vector>

#include "worker/kernels/kernels.h"

namespace clusterctl::kernels::test {

inline constexpr GgmlType kComputableTypes[] = {
    GgmlType::F32,    GgmlType::F16,     GgmlType::BF16,   GgmlType::Q8_0,  GgmlType::Q4_0,    GgmlType::Q4_1,
    GgmlType::Q5_0,   GgmlType::Q5_1,    GgmlType::Q4_K,   GgmlType::Q5_K,  GgmlType::Q6_K,    GgmlType::Q2_K,
    GgmlType::Q3_K,   GgmlType::IQ4_NL,  GgmlType::IQ4_XS, GgmlType::IQ3_S, GgmlType::IQ3_XXS, GgmlType::IQ2_S,
    GgmlType::IQ2_XS, GgmlType::IQ2_XXS, GgmlType::IQ1_M,  GgmlType::IQ1_S};

// `rows` rows of `cols` elements, packed back to back (row stride = gguf::row_bytes).
std::vector<uint8_t> random_weights(GgmlType type, int64_t rows, int64_t cols, std::mt19937& rng);

// n normally distributed floats, with a few large outliers as real activations have.
std::vector<float> random_activations(int64_t n, std::mt19937& rng);

// The SIMD ISAs this CPU and build can run (not Scalar).
std::vector<Isa> simd_isas();

// Scalar, then simd_isas().
std::vector<Isa> all_isas();

// Puts back the ISA that was active when it was made, so a test that switches ISAs leaves the
// next test the machine's default.
class IsaGuard {
 public:
  IsaGuard() : saved_(active_isa()) {}
  ~IsaGuard() { set_active_isa(saved_); }

 private:
  Isa saved_;
};

}  // namespace clusterctl::kernels::test
