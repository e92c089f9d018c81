// Every SIMD kernel against the scalar reference, for every type and every ISA this CPU runs.
//
// Tolerance: the integer parts of the quantised dot products are exact in every path; only the
// order of the float accumulation of block results differs. So a SIMD dot must equal the scalar
// one to 1e-4 of the RMS of the reference dots over the rows tested (random data: a wrong block
// or scale moves a result by several percent of that). Activation quantisation must be
// bit-identical across ISAs: all paths use the same formula and round-half-even.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "tests/unit/kernels/kernels_test_data.h"
#include "worker/common/error.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/kernels.h"

namespace clusterctl::kernels::test {
namespace {

std::string label(Isa isa, GgmlType t, int64_t n) {
  return std::string(isa_name(isa)) + " " + std::string(gguf::type_name(t)) + " n=" + std::to_string(n);
}

TEST(KernelsVecDot, EverySimdPathMatchesScalarReference) {
  IsaGuard guard;
  const auto isas = simd_isas();
  if (isas.empty()) GTEST_SKIP() << "this CPU has no SIMD kernels to compare";
  std::mt19937 rng(1234);
  constexpr int kRows = 8;
  for (GgmlType type : kComputableTypes) {
    for (int64_t n : {256, 768, 2048, 4352}) {
      const size_t w_row = gguf::row_bytes(type, static_cast<uint64_t>(n));
      const auto w = random_weights(type, kRows, n, rng);
      const auto x = random_activations(n, rng);
      std::vector<uint8_t> xq(activation_row_bytes(type, n));
      set_active_isa(Isa::Scalar);
      quantize_activations(type, x.data(), xq.data(), n);
      std::vector<float> ref(kRows);
      double sumsq = 0;
      for (int r = 0; r < kRows; ++r) {
        ref[r] = vec_dot(type, n, w.data() + r * w_row, xq.data());
        ASSERT_TRUE(std::isfinite(ref[r])) << label(Isa::Scalar, type, n);
        sumsq += static_cast<double>(ref[r]) * ref[r];
      }
      const double tol = 1e-4 * std::sqrt(sumsq / kRows);
      for (Isa isa : isas) {
        set_active_isa(isa);
        for (int r = 0; r < kRows; ++r)
          EXPECT_NEAR(vec_dot(type, n, w.data() + r * w_row, xq.data()), ref[r], tol)
              << label(isa, type, n) << " row " << r;
      }
    }
  }
}

// The scalar reference itself: for every quantised type, its integer-domain dot equals the dot
// of the dequantised weights and activations (dequantize_row, bit-identical to ggml's) up to
// float rounding (1e-5 of the sum of the products' magnitudes), so a wrong grid, sign, scale or delta term cannot hide
// in both paths.
TEST(KernelsVecDot, ScalarDotsEqualTheDotOfDequantisedRows) {
  IsaGuard guard;
  set_active_isa(Isa::Scalar);
  std::mt19937 rng(4321);
  constexpr int64_t n = 1024;
  for (GgmlType type : kComputableTypes) {
    const GgmlType act = vec_dot_type(type);
    // F32 / F16 / BF16 have no integer domain; Q4_1 / Q5_1 use Q8_1's fp16-rounded block sum
    // (as ggml does), which the dequantised activations do not carry.
    if (act == type || act == GgmlType::Q8_1) continue;
    const auto w = random_weights(type, 1, n, rng);
    const auto x = random_activations(n, rng);
    std::vector<uint8_t> xq(activation_row_bytes(type, n));
    quantize_activations(type, x.data(), xq.data(), n);
    std::vector<float> wf(n), xf(n);
    dequantize_row(type, w.data(), wf.data(), n);
    dequantize_row(act, xq.data(), xf.data(), n);
    double want = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      want += static_cast<double>(wf[i]) * xf[i];
      mag += std::fabs(static_cast<double>(wf[i]) * xf[i]);
    }
    EXPECT_NEAR(vec_dot(type, n, w.data(), xq.data()), want, 1e-5 * mag) << gguf::type_name(type);
  }
}

TEST(KernelsVecDot, ActivationQuantisationIsIdenticalOnEveryIsa) {
  IsaGuard guard;
  std::mt19937 rng(99);
  for (GgmlType type : kComputableTypes) {
    for (int64_t n : {256, 1280}) {
      auto x = random_activations(n, rng);
      x[5] = 0.f;  // an exact zero and a block of zeros exercise the amax == 0 branches
      std::fill(x.begin() + 256 - 32, x.begin() + 256, 0.f);
      const size_t bytes = activation_row_bytes(type, n);
      std::vector<uint8_t> ref(bytes), got(bytes);
      set_active_isa(Isa::Scalar);
      quantize_activations(type, x.data(), ref.data(), n);
      for (Isa isa : simd_isas()) {
        set_active_isa(isa);
        std::fill(got.begin(), got.end(), 0xAA);
        quantize_activations(type, x.data(), got.data(), n);
        EXPECT_EQ(0, std::memcmp(ref.data(), got.data(), bytes)) << label(isa, type, n);
      }
    }
  }
}

// The latent attention's F16 accumulator and float tiles must round as the scalar reference (and
// ggml) does on every ISA: the same bits, including values that round to subnormals or overflow
// to infinity, and a tail shorter than a vector.
TEST(KernelsVecDot, HalfAndFloatUpdatesAreIdenticalOnEveryIsa) {
  IsaGuard guard;
  std::mt19937 rng(7);
  const int64_t n = 75;
  std::vector<float> xf = random_activations(n, rng), yf = random_activations(n, rng);
  xf[3] = 7e4f, yf[4] = 1e-7f, xf[5] = -3e-6f, yf[6] = 6.5e4f;
  std::vector<fp16_t> x(n), y0(n);
  quantize_row(GgmlType::F16, xf.data(), x.data(), n);
  quantize_row(GgmlType::F16, yf.data(), y0.data(), n);
  auto run = [&](std::vector<fp16_t>& y, std::vector<float>& out, std::vector<float>& acc) {
    y = y0, acc = yf, out.assign(2 * n, 0.f);
    f32_column_dots(n, n, xf.data(), 0, yf.data(), out.data() + n);  // ld 0: column j is xf[j] k times
    f32_column_dots(7, n - 7, xf.data(), 1, yf.data(), out.data() + n + 1);
    f16_scale(n, y.data(), 0.37f);
    f16_mad(n, y.data(), x.data(), 1.9f);
    f16_mad(n, y.data(), x.data(), -0.003f);
    f16_to_f32(n, y.data(), out.data());
    f32_mad(n, acc.data(), xf.data(), 0.77f);
  };
  std::vector<fp16_t> ref_y, got_y;
  std::vector<float> ref_out, got_out, ref_acc, got_acc;
  set_active_isa(Isa::Scalar);
  run(ref_y, ref_out, ref_acc);
  EXPECT_NE(ref_y, y0);
  for (Isa isa : simd_isas()) {
    set_active_isa(isa);
    run(got_y, got_out, got_acc);
    EXPECT_EQ(ref_y, got_y) << isa_name(isa);
    EXPECT_EQ(0, std::memcmp(ref_out.data(), got_out.data(), 2 * n * sizeof(float))) << isa_name(isa);
    EXPECT_EQ(0, std::memcmp(ref_acc.data(), got_acc.data(), n * sizeof(float))) << isa_name(isa);
  }
}

// vec_dots is one vec_dot a row in one call (attention's dots over a head's keys and value rows):
// the same bits on every ISA, for the cache's types (their own kernels) and a quantised one (the
// fallback), rows further apart than their length, lengths around the vectors' widths.
TEST(KernelsVecDot, VecDotsGiveEachRowsVecDot) {
  IsaGuard guard;
  std::mt19937 rng(11);
  constexpr int64_t kRows = 13;
  for (GgmlType type : {GgmlType::F16, GgmlType::F32, GgmlType::BF16, GgmlType::Q8_0}) {
    for (int64_t n : {1, 7, 8, 9, 31, 32, 33, 64, 100, 257}) {
      if (n % gguf::type_traits(type).block_size != 0) continue;
      const size_t row = gguf::row_bytes(type, static_cast<uint64_t>(n)), stride = row + 24;
      const auto packed = random_weights(type, kRows, n, rng);
      std::vector<uint8_t> rows(kRows * stride);
      for (int64_t r = 0; r < kRows; ++r) std::memcpy(&rows[r * stride], &packed[r * row], row);
      const auto x = random_activations(n, rng);
      std::vector<uint8_t> xq(activation_row_bytes(type, n));
      for (Isa isa : all_isas()) {
        set_active_isa(isa);
        quantize_activations(type, x.data(), xq.data(), n);
        std::vector<float> got(kRows + 1, -1.0f);
        vec_dots(type, n, rows.data(), stride, kRows, xq.data(), got.data());
        for (int64_t r = 0; r < kRows; ++r) {
          const float want = vec_dot(type, n, &rows[r * stride], xq.data());
          EXPECT_EQ(0, std::memcmp(&want, &got[r], sizeof(float))) << label(isa, type, n) << " row " << r;
        }
        EXPECT_EQ(got[kRows], -1.0f) << label(isa, type, n) << ": wrote past the last row";
      }
    }
  }
}

TEST(KernelsVecDot, Q8KBlockSumsMatchTheirQuants) {
  IsaGuard guard;
  std::mt19937 rng(7);
  const auto x = random_activations(512, rng);
  struct BlockQ8K {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
  };
  static_assert(sizeof(BlockQ8K) == 292);
  std::vector<Isa> isas = simd_isas();
  isas.push_back(Isa::Scalar);
  for (Isa isa : isas) {
    set_active_isa(isa);
    std::vector<BlockQ8K> q(2);
    quantize_activations(GgmlType::Q4_K, x.data(), q.data(), 512);
    for (const auto& b : q) {
      for (int g = 0; g < 16; ++g) {
        int sum = 0;
        for (int j = 0; j < 16; ++j) sum += b.qs[16 * g + j];
        EXPECT_EQ(sum, b.bsums[g]) << isa_name(isa);
      }
      // The element of largest magnitude maps to -127 and d carries the sign back.
      float max_abs = 0;
      for (int j = 0; j < 256; ++j) max_abs = std::max(max_abs, std::fabs(b.d * b.qs[j]));
      EXPECT_GT(max_abs, 0.f);
    }
  }
}

TEST(KernelsVecDot, UnsupportedTypesAndIsasAreRefusedByName) {
  IsaGuard guard;
  EXPECT_FALSE(is_computable(GgmlType::TQ1_0));
  EXPECT_FALSE(is_computable(GgmlType::MXFP4));
  try {
    vec_dot_type(GgmlType::TQ2_0);
    FAIL() << "TQ2_0 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("TQ2_0"), std::string::npos) << e.what();
  }
#if defined(__x86_64__)
  EXPECT_THROW(set_active_isa(Isa::Neon), Error);
#else
  EXPECT_THROW(set_active_isa(Isa::Avx2), Error);
#endif
  EXPECT_NO_THROW(set_active_isa(Isa::Scalar));
}

// A scale that decodes to NaN or infinity is refused with where it is; valid blocks of every
// type pass, and a NaN in a row outside the matrix view (another rank's rows) is not looked at.
TEST(KernelsValidate, NanOrInfiniteScalesAreRefusedWithTheirPlace) {
  std::mt19937 rng(5);
  constexpr int64_t kRows = 3, kCols = 512;
  for (GgmlType type : kComputableTypes) {
    const auto w = random_weights(type, kRows, kCols, rng);
    const Matrix m{type, w.data(), kRows, kCols, gguf::row_bytes(type, kCols)};
    EXPECT_NO_THROW(validate_blocks(m, "t")) << gguf::type_name(type);
  }
  struct Case {
    GgmlType type;
    size_t block_bytes, offset;
    uint16_t bits;
    const char* field;
    const char* kind;
  };
  const Case cases[] = {
      {GgmlType::Q2_K, sizeof(block_q2_K), offsetof(block_q2_K, dmin), 0x7e00, "dmin", "NaN"},
      {GgmlType::Q3_K, sizeof(block_q3_K), offsetof(block_q3_K, d), 0xfc00, "d", "infinite"},
      {GgmlType::IQ4_NL, sizeof(block_iq4_nl), offsetof(block_iq4_nl, d), 0x7c00, "d", "infinite"},
      {GgmlType::IQ4_XS, sizeof(block_iq4_xs), offsetof(block_iq4_xs, d), 0x7c01, "d", "NaN"},
      {GgmlType::Q4_K, sizeof(block_q4_K), offsetof(block_q4_K, d), 0x7e00, "d", "NaN"},
      {GgmlType::IQ2_XXS, sizeof(block_iq2_xxs), offsetof(block_iq2_xxs, d), 0x7c00, "d", "infinite"},
      {GgmlType::IQ2_XS, sizeof(block_iq2_xs), offsetof(block_iq2_xs, d), 0xfe00, "d", "NaN"},
      {GgmlType::IQ2_S, sizeof(block_iq2_s), offsetof(block_iq2_s, d), 0x7c00, "d", "infinite"},
      {GgmlType::IQ3_XXS, sizeof(block_iq3_xxs), offsetof(block_iq3_xxs, d), 0x7d00, "d", "NaN"},
      {GgmlType::IQ3_S, sizeof(block_iq3_s), offsetof(block_iq3_s, d), 0xfc00, "d", "infinite"},
      {GgmlType::IQ1_S, sizeof(block_iq1_s), offsetof(block_iq1_s, d), 0x7e00, "d", "NaN"},
  };
  for (const Case& c : cases) {
    auto w = random_weights(c.type, kRows, kCols, rng);
    const size_t stride = gguf::row_bytes(c.type, kCols);
    std::memcpy(&w[1 * stride + 1 * c.block_bytes + c.offset], &c.bits, 2);
    const Matrix all{c.type, w.data(), kRows, kCols, stride};
    try {
      validate_blocks(all, "model.gguf: tensor 'blk.0.ffn_down.weight'");
      ADD_FAILURE() << gguf::type_name(c.type) << ": a bad scale was accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      for (const std::string& part : {std::string("blk.0.ffn_down.weight"), std::string("row 1"),
                                      std::string("block 1"), std::string("scale ") + c.field, std::string(c.kind)})
        EXPECT_NE(msg.find(part), std::string::npos) << part << " missing from: " << msg;
    }
    const Matrix row0{c.type, w.data(), 1, kCols, stride};
    EXPECT_NO_THROW(validate_blocks(row0, "t")) << gguf::type_name(c.type);
  }
}

// IQ1_M has no fp16 field: its scale's four nibbles top the four scale words. All-ones nibbles
// (0xffff: NaN) there are refused; the other bits of those words are sub-block scales.
TEST(KernelsValidate, Iq1MScaleInTheScaleWordsIsChecked) {
  std::mt19937 rng(6);
  constexpr int64_t kRows = 2, kCols = 512;
  auto w = random_weights(GgmlType::IQ1_M, kRows, kCols, rng);
  const size_t stride = gguf::row_bytes(GgmlType::IQ1_M, kCols);
  for (int k = 0; k < 4; ++k) w[stride + sizeof(block_iq1_m) + offsetof(block_iq1_m, scales) + 2 * k + 1] |= 0xf0;
  try {
    validate_blocks({GgmlType::IQ1_M, w.data(), kRows, kCols, stride}, "tensor 'blk.3.attn_q.weight'");
    ADD_FAILURE() << "a NaN IQ1_M scale was accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const char* part : {"blk.3.attn_q.weight", "row 1", "block 1", "NaN"})
      EXPECT_NE(msg.find(part), std::string::npos) << part << " missing from: " << msg;
  }
}

}  // namespace
}  // namespace clusterctl::kernels::test
