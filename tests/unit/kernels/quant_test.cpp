// Reference (de)quantisation: fp16/bf16 rounding, ggml block layouts decoded by hand,
// quantisation error bounds on Gaussian data, determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <random>
#include <vector>

#include "worker/common/error.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/iq_grids.h"
#include "worker/kernels/kernels.h"

namespace clusterctl::kernels {
namespace {

using gguf::GgmlType;

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::vector<float> gaussian(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

std::vector<uint8_t> quantize(GgmlType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(gguf::row_bytes(t, x.size()));
  quantize_row(t, x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

std::vector<float> dequantize(GgmlType t, const std::vector<uint8_t>& q, size_t n) {
  std::vector<float> y(n);
  dequantize_row(t, q.data(), y.data(), static_cast<int64_t>(n));
  return y;
}

// RMS of the error relative to the RMS of the signal.
double relative_rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, sig = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    sig += double(x[i]) * x[i];
  }
  return std::sqrt(err / sig);
}

// ------------------------------------------------------------------ fp16 / bf16

TEST(Fp16, EveryHalfSurvivesARoundTrip) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
    const float f = fp16_to_fp32(static_cast<fp16_t>(h));
    if (nan) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f)))) << std::hex << h;
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), h) << "half 0x" << std::hex << h << " -> " << f;
  }
}

TEST(Fp16, KnownValues) {
  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7bff);  // below the midpoint to 65536
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // the midpoint rounds to even: infinity
  EXPECT_EQ(fp32_to_fp16(1e9f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24: even
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);         // tie 1.5 ulp: to even (2)
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie: down to even
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie: up to even
  EXPECT_EQ(fp32_to_fp16(INFINITY), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xfc00);
  EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(NAN))));
}

// For random floats across the half range, the result must be the nearest half (ties to even).
TEST(Fp16, RoundsToNearestEven) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits(0x33000000u, 0x477fefffu);
  for (int i = 0; i < 200000; ++i) {
    const float f = bits_float(bits(rng)) * ((i & 1) ? -1.0f : 1.0f);
    const fp16_t h = fp32_to_fp16(f);
    const double got = fp16_to_fp32(h);
    const double err = std::fabs(got - f);
    for (int step : {-1, 1}) {
      const fp16_t n = static_cast<fp16_t>(h + step);
      if ((n & 0x7c00) == 0x7c00 || ((h ^ n) & 0x8000)) continue;  // left the finite range or crossed sign
      const double nerr = std::fabs(double(fp16_to_fp32(n)) - f);
      ASSERT_LE(err, nerr) << f;
      if (err == nerr) {
        ASSERT_EQ(h & 1, 0) << "tie not rounded to even for " << f;
      }
    }
  }
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  EXPECT_EQ(fp32_to_bf16(bits_float(0x3f808000u)), 0x3f80);  // tie: even
  EXPECT_EQ(fp32_to_bf16(bits_float(0x3f818000u)), 0x3f82);  // tie: even (up)
  EXPECT_EQ(fp32_to_bf16(bits_float(0x3f808001u)), 0x3f81);
  EXPECT_EQ(fp32_to_bf16(bits_float(0x7f7fffffu)), 0x7f80);  // FLT_MAX rounds to infinity
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(NAN))));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_fp32(static_cast<bf16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_bf16(f), h);
  }
}

// ------------------------------------------------------------------ block layouts, decoded by hand

TEST(BlockLayout, Q4_0NibblesAndScale) {
  block_q4_0 b{};
  b.d = fp32_to_fp16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(GgmlType::Q4_0, &b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 0.5f);            // low nibbles: elements 0..15
    EXPECT_EQ(y[j + 16], (15 - j - 8) * 0.5f);  // high nibbles: elements 16..31
  }
}

TEST(BlockLayout, Q5_1HighBits) {
  block_q5_1 b{};
  b.d = fp32_to_fp16(1.0f);
  b.m = fp32_to_fp16(-3.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (j << 4));
  const uint32_t qh = 0x8001'0002u;  // bit 1 (element 1), bit 16 (element 16), bit 31 (element 31)
  std::memcpy(b.qh, &qh, 4);
  float y[32];
  dequantize_row(GgmlType::Q5_1, &b, y, 32);
  EXPECT_EQ(y[0], 0 - 3.0f);
  EXPECT_EQ(y[1], 1 + 16 - 3.0f);
  EXPECT_EQ(y[2], 2 - 3.0f);
  EXPECT_EQ(y[16], 0 + 16 - 3.0f);
  EXPECT_EQ(y[17], 1 - 3.0f);
  EXPECT_EQ(y[31], 15 + 16 - 3.0f);
}

TEST(BlockLayout, Q4_KSixBitScalesAndMins) {
  // Sub-block j gets scale 10+j (and, for j >= 4, scale 40+j to use the top bits) and min 2*j+33.
  block_q4_K b{};
  b.d = fp32_to_fp16(1.0f);
  b.dmin = fp32_to_fp16(0.25f);
  int sc[8], mn[8];
  for (int j = 0; j < 8; ++j) sc[j] = j < 4 ? 10 + j : 40 + j, mn[j] = 2 * j + 33;
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    b.scales[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    b.scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
  }
  for (int i = 0; i < 128; ++i) b.qs[i] = static_cast<uint8_t>(3 | (5 << 4));  // low nibble 3, high 5
  float y[256];
  dequantize_row(GgmlType::Q4_K, &b, y, 256);
  for (int j = 0; j < 8; ++j) {
    const int q = j % 2 == 0 ? 3 : 5;  // each 64-chunk: sub-block 2c from low nibbles, 2c+1 from high
    for (int l = 0; l < 32; ++l) ASSERT_EQ(y[32 * j + l], float(sc[j]) * q - 0.25f * mn[j]) << j;
  }
}

TEST(BlockLayout, Q6_KQuadsAndScales) {
  block_q6_K b{};
  b.d = fp32_to_fp16(0.5f);
  for (int i = 0; i < 16; ++i) b.scales[i] = static_cast<int8_t>(i - 8);
  // Element e of each 128-half: quant value v(e) = (e % 64) in [0, 63].
  uint8_t L[256];
  for (int e = 0; e < 256; ++e) L[e] = static_cast<uint8_t>((e * 7) % 64);
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* q = L + 128 * h;
      b.ql[64 * h + l] = static_cast<uint8_t>((q[l] & 15) | ((q[l + 64] & 15) << 4));
      b.ql[64 * h + l + 32] = static_cast<uint8_t>((q[l + 32] & 15) | ((q[l + 96] & 15) << 4));
      b.qh[32 * h + l] = static_cast<uint8_t>((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) |
                                              ((q[l + 96] >> 4) << 6));
    }
  float y[256];
  dequantize_row(GgmlType::Q6_K, &b, y, 256);
  for (int e = 0; e < 256; ++e) ASSERT_EQ(y[e], 0.5f * (e / 16 - 8) * (L[e] - 32)) << e;
}

// ------------------------------------------------------------------ quantisation quality

struct ErrorBound {
  GgmlType type;
  double max_relative_rms;
};

class QuantError : public ::testing::TestWithParam<ErrorBound> {};

TEST_P(QuantError, GaussianRoundTripWithinBound) {
  const auto [type, bound] = GetParam();
  const auto x = gaussian(1 << 16, 1, 0.02f);
  const double err = relative_rms_error(x, dequantize(type, quantize(type, x), x.size()));
  RecordProperty("relative_rms_error", std::to_string(err));
  std::printf("  %-5s relative RMS error %.5f\n", std::string(gguf::type_name(type)).c_str(), err);
  EXPECT_LT(err, bound);
}

// Bounds are the values measured on this data (seed 1) plus about 20 %. They sit where theory
// puts them: an absmax 8-bit block of 32 Gaussians has a step of ~2.2 sigma/127, i.e. an RMS
// error of ~0.5 %; the K-quants' fitted scales beat the plain absmax formats of equal width.
// measured: F16 0.00021, BF16 0.00166, Q8_0/Q8_1 0.00536, Q8_K 0.00693, Q6_K 0.0178,
// Q5_0 0.0427, Q5_1 0.0378, Q5_K 0.0360, Q4_0 0.0859, Q4_1 0.0780, Q4_K 0.0712,
// IQ4_NL 0.0760, IQ4_XS 0.0766, Q3_K 0.1508, Q2_K 0.2958.
INSTANTIATE_TEST_SUITE_P(Types, QuantError,
                         ::testing::Values(ErrorBound{GgmlType::F16, 0.0003}, ErrorBound{GgmlType::BF16, 0.002},
                                           ErrorBound{GgmlType::Q8_0, 0.0065}, ErrorBound{GgmlType::Q8_1, 0.0065},
                                           ErrorBound{GgmlType::Q8_K, 0.0085}, ErrorBound{GgmlType::Q6_K, 0.022},
                                           ErrorBound{GgmlType::Q5_0, 0.052}, ErrorBound{GgmlType::Q5_1, 0.046},
                                           ErrorBound{GgmlType::Q5_K, 0.044}, ErrorBound{GgmlType::Q4_0, 0.104},
                                           ErrorBound{GgmlType::Q4_1, 0.095}, ErrorBound{GgmlType::Q4_K, 0.086},
                                           ErrorBound{GgmlType::IQ4_NL, 0.091}, ErrorBound{GgmlType::IQ4_XS, 0.092},
                                           ErrorBound{GgmlType::Q3_K, 0.181}, ErrorBound{GgmlType::Q2_K, 0.355}),
                         [](const auto& info) { return std::string(gguf::type_name(info.param.type)); });

// The optimising quantisers must beat plain absmax/min-max rounding of the same width.
TEST(Quant, FittedScalesBeatPlainRounding) {
  const auto x = gaussian(1 << 15, 5);
  auto err = [&](GgmlType t) { return relative_rms_error(x, dequantize(t, quantize(t, x), x.size())); };
  EXPECT_LT(err(GgmlType::Q4_K), err(GgmlType::Q4_1));
  EXPECT_LT(err(GgmlType::Q5_K), err(GgmlType::Q5_1));
  EXPECT_LT(err(GgmlType::Q6_K), err(GgmlType::Q5_K));
}

TEST(Quant, F32IsExact) {
  const auto x = gaussian(256, 3);
  EXPECT_EQ(dequantize(GgmlType::F32, quantize(GgmlType::F32, x), x.size()), x);
}

// The same input gives the same bytes, and quantising what a block decodes to gives that
// block back for the absmax formats (their scale is recovered exactly).
TEST(Quant, DeterministicAndStable) {
  const auto x = gaussian(4096, 11);
  for (GgmlType t :
       {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K,
        GgmlType::Q6_K, GgmlType::Q8_K, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS}) {
    const auto q = quantize(t, x);
    EXPECT_EQ(q, quantize(t, x)) << gguf::type_name(t);
    const auto y = dequantize(t, q, x.size());
    EXPECT_EQ(y, dequantize(t, q, x.size())) << gguf::type_name(t);
    const auto y2 = dequantize(t, quantize(t, y), x.size());
    // Q2_K/Q3_K's searches refit their few levels to the decoded values: close, not the same.
    const double bound = t == GgmlType::Q2_K || t == GgmlType::Q3_K ? 0.05 : 0.01;
    EXPECT_LE(relative_rms_error(y, y2), bound) << gguf::type_name(t);
  }
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_0}) {
    const auto q = quantize(t, x);
    EXPECT_EQ(quantize(t, dequantize(t, q, x.size())), q) << gguf::type_name(t);
  }
}

TEST(Quant, ZerosAndConstantsStayFinite) {
  for (GgmlType t :
       {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K,
        GgmlType::Q6_K, GgmlType::Q8_K, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS}) {
    for (float c : {0.0f, 1.0f, -0.5f}) {
      const std::vector<float> x(512, c);
      const auto y = dequantize(t, quantize(t, x), x.size());
      for (float v : y) {
        ASSERT_TRUE(std::isfinite(v)) << gguf::type_name(t);
        ASSERT_NEAR(v, c, 0.02) << gguf::type_name(t) << " constant " << c;
      }
    }
  }
}

TEST(Quant, RefusesUnsupportedTypesAndBadLengths) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> out(4096);
  EXPECT_THROW(quantize_row(GgmlType::TQ1_0, x.data(), out.data(), 256), Error);
  EXPECT_THROW(dequantize_row(GgmlType::TQ2_0, out.data(), x.data(), 256), Error);
  try {  // the IQ grid types decode but have no quantiser here: the message says why and what to use
    quantize_row(GgmlType::IQ2_XXS, x.data(), out.data(), 256);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("importance matrix"), std::string::npos) << e.what();
  }
  EXPECT_THROW(quantize_row(GgmlType::Q4_K, x.data(), out.data(), 100), Error);
  try {
    quantize_row(GgmlType::Q4_0, x.data(), out.data(), 33);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block size 32"), std::string::npos) << e.what();
  }
}

TEST(Quant, ComputableTypes) {
  for (GgmlType t :
       {GgmlType::F32,     GgmlType::F16,    GgmlType::BF16,   GgmlType::Q8_0,    GgmlType::Q4_0,   GgmlType::Q4_1,
        GgmlType::Q5_0,    GgmlType::Q5_1,   GgmlType::Q4_K,   GgmlType::Q5_K,    GgmlType::Q6_K,   GgmlType::Q2_K,
        GgmlType::Q3_K,    GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ2_S,
        GgmlType::IQ3_XXS, GgmlType::IQ3_S,  GgmlType::IQ1_S,  GgmlType::IQ1_M})
    EXPECT_TRUE(is_computable(t)) << gguf::type_name(t);
  for (GgmlType t : {GgmlType::TQ1_0, GgmlType::TQ2_0, GgmlType::MXFP4, GgmlType::Q8_K, GgmlType::I32})
    EXPECT_FALSE(is_computable(t)) << gguf::type_name(t);
}

// Bit-identity with llama.cpp for the types added for big models. The hashes were made by a
// throwaway program against libggml-base of llama.cpp 3f545bec (ngxson/llama.cpp mirror): it
// quantised reference_input() (8 rows of 4096) with ggml_quantize_chunk and no importance matrix
// (what llama-quantize runs), dequantised those bytes with the type's to_float, and dequantised
// random_blocks() the same way; each hash is FNV-1a 64 of the bytes / floats. The block formats
// and these quantisers are unchanged between the project's reference commit c392e509 and
// 3f545bec. A different bit anywhere (a level, a scale, a rounding) changes the hash.
uint64_t fnv1a(uint64_t h, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}
constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ull;

struct Lcg {
  uint64_t s;
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 33);
  }
};

std::vector<float> reference_input(int64_t n) {
  Lcg g{42};
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    float v = (static_cast<int>(g.next() % 20001) - 10000) * 1e-4f;
    if (g.next() % 64 == 0) v *= 20.f;
    x[static_cast<size_t>(i)] = v * static_cast<float>(1 + (i / 4096) % 4) * 0.01f;
  }
  std::fill(x.begin() + 1024, x.begin() + 1280, 0.f);      // an all-zero super-block
  std::fill(x.begin() + 2048, x.begin() + 2304, 0.0037f);  // a constant one
  return x;
}

// Random bytes with each fp16 scale field set to a finite value of random sign.
std::vector<uint8_t> random_blocks(size_t bytes, size_t block_bytes, std::initializer_list<size_t> half_offsets) {
  Lcg g{7};
  std::vector<uint8_t> r(bytes);
  for (auto& b : r) b = static_cast<uint8_t>(g.next());
  for (size_t b = 0; b + block_bytes <= r.size(); b += block_bytes)
    for (size_t off : half_offsets) {
      const auto h = static_cast<uint16_t>((0x1800 + g.next() % 0x0c00) | ((g.next() & 1) << 15));
      std::memcpy(&r[b + off], &h, 2);
    }
  return r;
}

TEST(Quant, NewTypesMatchLlamaCppBitForBit) {
  constexpr int64_t kCols = 4096, kRows = 8, kN = kCols * kRows;
  const auto x = reference_input(kN);
  ASSERT_EQ(fnv1a(kFnvBasis, x.data(), x.size() * 4), 0xefbdaf43d4cd63d1ull) << "the reference input changed";
  struct Ref {
    GgmlType type;
    size_t block_bytes;
    std::initializer_list<size_t> half_offsets;
    uint64_t quantised, dequantised, random_dequantised;
  };
  const Ref refs[] = {
      {GgmlType::Q2_K,
       sizeof(block_q2_K),
       {80, 82},
       0xcf60a55c511b5d1cull,
       0x106ecdadebc0d473ull,
       0x0ad568ce60fe3389ull},
      {GgmlType::Q3_K, sizeof(block_q3_K), {108}, 0xc12915869d9c34caull, 0x52c73beec08d1a8full, 0xd56bd86f65e50244ull},
      {GgmlType::IQ4_NL,
       sizeof(block_iq4_nl),
       {0},
       0x24ae8d80744da7f2ull,
       0x6e9f830ee7905221ull,
       0x3e9e356e52ff531aull},
      {GgmlType::IQ4_XS,
       sizeof(block_iq4_xs),
       {0},
       0x91743628ce8f6ebbull,
       0xc4e0d3d436bb0c76ull,
       0xdd9f3e9a2b0f52daull},
  };
  for (const auto& r : refs) {
    const size_t row = gguf::row_bytes(r.type, kCols);
    std::vector<uint8_t> q(row * kRows);
    for (int64_t i = 0; i < kRows; ++i) quantize_row(r.type, x.data() + i * kCols, q.data() + i * row, kCols);
    EXPECT_EQ(fnv1a(kFnvBasis, q.data(), q.size()), r.quantised) << gguf::type_name(r.type) << " quantised bytes";
    std::vector<float> y(kN);
    dequantize_row(r.type, q.data(), y.data(), kN);
    EXPECT_EQ(fnv1a(kFnvBasis, y.data(), y.size() * 4), r.dequantised) << gguf::type_name(r.type) << " dequantised";
    const auto blocks = random_blocks(q.size(), r.block_bytes, r.half_offsets);
    dequantize_row(r.type, blocks.data(), y.data(), kN);
    EXPECT_EQ(fnv1a(kFnvBasis, y.data(), y.size() * 4), r.random_dequantised)
        << gguf::type_name(r.type) << " dequantised random blocks";
  }
}

// The IQ grid types have no quantiser without an importance matrix, so only random valid blocks
// are compared: random bytes (every grid index, sign and sub-block scale is a full bit field, so
// any bytes are a valid block) with the fp16 super-block scale set finite; for IQ1_M that scale
// is the top nibbles of its four scale words. Hashes from the same throwaway program against
// libggml-base of 3f545bec (its to_float of the same bytes).
std::vector<uint8_t> lcg_iq_blocks(GgmlType type, size_t bytes) {
  const size_t block_bytes = gguf::type_traits(type).type_size;
  Lcg g{11};
  std::vector<uint8_t> r(bytes);
  for (auto& b : r) b = static_cast<uint8_t>(g.next());
  for (size_t b = 0; b + block_bytes <= r.size(); b += block_bytes) {
    const auto h = static_cast<uint16_t>((0x1800 + g.next() % 0x0c00) | ((g.next() & 1) << 15));
    if (type != GgmlType::IQ1_M) {
      std::memcpy(&r[b], &h, 2);
      continue;
    }
    for (int k = 0; k < 4; ++k) {
      uint16_t w;
      std::memcpy(&w, &r[b + offsetof(block_iq1_m, scales) + 2 * k], 2);
      w = static_cast<uint16_t>((w & 0x0fff) | (((h >> (4 * k)) & 0xf) << 12));
      std::memcpy(&r[b + offsetof(block_iq1_m, scales) + 2 * k], &w, 2);
    }
  }
  return r;
}

TEST(Quant, IqGridTypesDecodeAsLlamaCpp) {
  constexpr int64_t kCols = 4096, kRows = 8, kN = kCols * kRows;
  struct Ref {
    GgmlType type;
    uint64_t blocks, dequantised;
  };
  const Ref refs[] = {
      {GgmlType::IQ2_XXS, 0x680a220f1cd86f0bull, 0x59a606366ec8c8b7ull},
      {GgmlType::IQ2_XS, 0x7e2e558e22ff037bull, 0xe97b61774e35d324ull},
      {GgmlType::IQ2_S, 0xd8e74f6c08cbd5a4ull, 0xf4e42ab83978f38full},
      {GgmlType::IQ3_XXS, 0x480441fe347267f4ull, 0x4e2487751fac4518ull},
      {GgmlType::IQ3_S, 0x0b44b7c4ca1daf81ull, 0xf0fec140e5752f3cull},
      {GgmlType::IQ1_S, 0x8c751f767de12128ull, 0x429aba6767c30367ull},
      {GgmlType::IQ1_M, 0xd490fbf35090683dull, 0xef7f7eee4bcaa5a3ull},
  };
  for (const auto& r : refs) {
    const auto blocks = lcg_iq_blocks(r.type, gguf::row_bytes(r.type, kCols) * kRows);
    ASSERT_EQ(fnv1a(kFnvBasis, blocks.data(), blocks.size()), r.blocks) << gguf::type_name(r.type) << " input blocks";
    std::vector<float> y(kN);
    dequantize_row(r.type, blocks.data(), y.data(), kN);
    EXPECT_EQ(fnv1a(kFnvBasis, y.data(), y.size() * 4), r.dequantised) << gguf::type_name(r.type) << " dequantised";
  }
}

// The grids entry for entry: FNV-1a 64 of each table's bytes as ggml-common.h of 3f545bec
// defines it (random blocks above reach most entries, this reaches all).
template <typename Table>
uint64_t table_hash(const Table& t) {
  return fnv1a(kFnvBasis, t.data(), t.size() * sizeof(t[0]));
}

TEST(Quant, IqGridsEqualLlamaCpps) {
  EXPECT_EQ(table_hash(detail::kIq2xxsGrid), 0xbb4ee025b5ac6e8eull);
  EXPECT_EQ(table_hash(detail::kIq2xsGrid), 0xc9b1ee61e79909bdull);
  EXPECT_EQ(table_hash(detail::kIq2sGrid), 0x123edd38a3b62b90ull);
  EXPECT_EQ(table_hash(detail::kIq3xxsGrid), 0xdfa5dc83d6a155d5ull);
  EXPECT_EQ(table_hash(detail::kIq3sGrid), 0xfa37020c25b44829ull);
  EXPECT_EQ(table_hash(detail::kIq1sGrid), 0x6703ed863501ae2eull);
  // ksigns_iq2xs: 7 sign bits and the parity bit that makes the count of negatives even.
  EXPECT_EQ(detail::iq_signs_of(0), 0);
  EXPECT_EQ(detail::iq_signs_of(1), 129);
  EXPECT_EQ(detail::iq_signs_of(3), 3);
  EXPECT_EQ(detail::iq_signs_of(127), 255);
  for (unsigned i = 0; i < 128; ++i) {
    const uint8_t s = detail::iq_signs_of(i);
    for (int j = 0; j < 8; ++j)
      EXPECT_EQ(static_cast<int8_t>(detail::kIqSignBytes[i] >> (8 * j)), (s >> j) & 1 ? -1 : 1) << i << " " << j;
  }
}

// random_iq_blocks (synthetic models, benchmarks): valid blocks of the asked RMS, the same bytes
// for the same seed, and only for the IQ grid types.
TEST(Quant, RandomIqBlocksHaveTheAskedRms) {
  constexpr int64_t kN = 4096;
  for (GgmlType t : {GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ2_S, GgmlType::IQ3_XXS, GgmlType::IQ3_S,
                     GgmlType::IQ1_S, GgmlType::IQ1_M}) {
    ASSERT_TRUE(is_iq_grid_type(t));
    std::vector<uint8_t> a(gguf::row_bytes(t, kN)), b(a.size());
    random_iq_blocks(t, 5, 0.02f, a.data(), kN);
    random_iq_blocks(t, 5, 0.02f, b.data(), kN);
    EXPECT_EQ(a, b) << gguf::type_name(t);
    random_iq_blocks(t, 6, 0.02f, b.data(), kN);
    EXPECT_NE(a, b) << gguf::type_name(t);
    const auto y = dequantize(t, a, kN);
    double sumsq = 0;
    for (float v : y) sumsq += static_cast<double>(v) * v;
    EXPECT_NEAR(std::sqrt(sumsq / kN), 0.02, 0.0005) << gguf::type_name(t);  // fp16 rounding of d
  }
  EXPECT_FALSE(is_iq_grid_type(GgmlType::IQ4_XS));
  std::vector<uint8_t> out(4096);
  EXPECT_THROW(random_iq_blocks(GgmlType::Q4_K, 1, 0.02f, out.data(), 256), Error);
  EXPECT_THROW(random_iq_blocks(GgmlType::IQ2_XXS, 1, 0.02f, out.data(), 100), Error);
}

// random_weight_rows (kernels_bench, doctor's stream ratios): 64 distinct rows of RMS 0.02,
// repeated, the same bytes for the same seed, for quantised and grid types alike.
TEST(Quant, RandomWeightRowsRepeat64DistinctRowsOfTheRms) {
  constexpr int64_t kRows = 130, kCols = 512;
  for (GgmlType t : {GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::IQ2_XXS, GgmlType::F16}) {
    const size_t row = gguf::row_bytes(t, kCols);
    const std::vector<uint8_t> a = random_weight_rows(t, kRows, kCols, 3);
    ASSERT_EQ(a.size(), row * kRows) << gguf::type_name(t);
    EXPECT_EQ(a, random_weight_rows(t, kRows, kCols, 3)) << gguf::type_name(t);
    auto row_of = [&](int64_t r) { return std::vector<uint8_t>(a.begin() + r * row, a.begin() + (r + 1) * row); };
    EXPECT_EQ(row_of(129), row_of(1)) << gguf::type_name(t);
    EXPECT_NE(row_of(1), row_of(2)) << gguf::type_name(t);
    const auto y = dequantize(t, a, kRows * kCols);
    double sumsq = 0;
    for (float v : y) sumsq += static_cast<double>(v) * v;
    EXPECT_NEAR(std::sqrt(sumsq / static_cast<double>(y.size())), 0.02, 0.002) << gguf::type_name(t);
  }
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::IQ1_S})
    EXPECT_NE(random_weight_rows(t, 4, 256, 1), random_weight_rows(t, 4, 256, 2)) << gguf::type_name(t);
}

}  // namespace
}  // namespace clusterctl::kernels
