// matmul against a float reference: dequantise the weights and take the dot product in double
// with the unquantised activations. The difference allowed is what quantising the activations
// can cost (a bound, computed per output, not a guess):
//   Q8_0/Q8_1/Q8_K: each activation moves by at most half a step, amax(block)/254, and the fp16
//                   block scale adds 2^-11 relative: sum_k |w_k| * amax_k/254 + 1e-3 * sum_k |w_k x_k|
//   F16 / BF16: 2^-11 / 2^-8 relative per element: 1e-3 / 4e-3 * sum_k |w_k x_k|
//   F32: float accumulation only: 1e-5 * sum_k |w_k x_k|
// plus 1e-5 * sum_k |w_k x_k| for float accumulation order.
// That bound is loose (worst case), so each output is also compared with the scalar vec_dot of
// the same row and quantised token, which only float summation order can change: within 1e-4 of
// the RMS of those dots (a wrong scale or offset in one path moves outputs by percents).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/unit/kernels/kernels_test_data.h"
#include "worker/common/error.h"
#include "worker/kernels/kernels.h"

namespace clusterctl::kernels::test {
namespace {

struct Reference {
  std::vector<double> y;      // exact dot with dequantised weights
  std::vector<double> bound;  // allowed |matmul - y| per output
};

Reference float_reference(GgmlType type, const std::vector<uint8_t>& w, int64_t rows, int64_t cols,
                          const std::vector<float>& x, int64_t n_tokens) {
  const size_t row_bytes = gguf::row_bytes(type, static_cast<uint64_t>(cols));
  std::vector<float> wf(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) dequantize_row(type, w.data() + r * row_bytes, wf.data() + r * cols, cols);
  const GgmlType act = vec_dot_type(type);
  const int block = act == GgmlType::Q8_K ? 256 : 32;
  const bool int8_act = act == GgmlType::Q8_0 || act == GgmlType::Q8_1 || act == GgmlType::Q8_K;
  const double rel = act == GgmlType::F32 ? 1e-5 : act == GgmlType::BF16 ? 4e-3 : 1e-3;
  Reference ref;
  ref.y.resize(static_cast<size_t>(rows * n_tokens));
  ref.bound.resize(ref.y.size());
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* xt = x.data() + t * cols;
    std::vector<double> half_step(static_cast<size_t>(cols), 0.0);
    if (int8_act) {
      for (int64_t b = 0; b < cols; b += block) {
        float amax = 0;
        for (int64_t k = b; k < b + block; ++k) amax = std::max(amax, std::fabs(xt[k]));
        for (int64_t k = b; k < b + block; ++k) half_step[k] = amax / 254.0;
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const float* wr = wf.data() + r * cols;
      double dot = 0, abs_dot = 0, step = 0;
      for (int64_t k = 0; k < cols; ++k) {
        dot += static_cast<double>(wr[k]) * xt[k];
        abs_dot += std::fabs(static_cast<double>(wr[k]) * xt[k]);
        step += std::fabs(wr[k]) * half_step[k];
      }
      ref.y[t * rows + r] = dot;
      ref.bound[t * rows + r] = step + (rel + 1e-5) * abs_dot + 1e-6;
    }
  }
  return ref;
}

// Scalar vec_dot of every (row, token) pair: y[t * rows + r], and the RMS of all of them.
std::vector<float> pairwise_reference(GgmlType type, const std::vector<uint8_t>& w, int64_t rows, int64_t cols,
                                      const std::vector<float>& x, int64_t n_tokens, double* rms) {
  const Isa saved = active_isa();
  set_active_isa(Isa::Scalar);
  const size_t row_bytes = gguf::row_bytes(type, static_cast<uint64_t>(cols));
  std::vector<uint8_t> xq(activation_row_bytes(type, cols));
  std::vector<float> y(static_cast<size_t>(rows * n_tokens));
  double sumsq = 0;
  for (int64_t t = 0; t < n_tokens; ++t) {
    quantize_activations(type, x.data() + t * cols, xq.data(), cols);
    for (int64_t r = 0; r < rows; ++r) {
      y[t * rows + r] = vec_dot(type, cols, w.data() + r * row_bytes, xq.data());
      sumsq += static_cast<double>(y[t * rows + r]) * y[t * rows + r];
    }
  }
  set_active_isa(saved);
  *rms = std::sqrt(sumsq / static_cast<double>(y.size()));
  return y;
}

TEST(KernelsMatmul, MatchesFloatReferenceForEveryTypeIsaThreadCountAndBatch) {
  IsaGuard guard;
  std::mt19937 rng(42);
  constexpr int64_t kRows = 37;  // odd: the last row chunk and tile are partial
  constexpr int64_t kCols = 512;
  constexpr int64_t kMaxTokens = 17;
  Workspace ws;
  for (GgmlType type : kComputableTypes) {
    const auto w = random_weights(type, kRows, kCols, rng);
    const auto x = random_activations(kCols * kMaxTokens, rng);
    const Reference ref = float_reference(type, w, kRows, kCols, x, kMaxTokens);
    double rms = 0;
    const auto pairs = pairwise_reference(type, w, kRows, kCols, x, kMaxTokens, &rms);
    const Matrix m{type, w.data(), kRows, kCols, gguf::row_bytes(type, kCols)};
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      for (Isa isa : all_isas()) {
        set_active_isa(isa);
        for (int64_t n_tokens = 1; n_tokens <= kMaxTokens; ++n_tokens) {
          std::vector<float> y(static_cast<size_t>(kRows * n_tokens), NAN);
          matmul(m, x.data(), n_tokens, y.data(), pool, ws);
          for (int64_t i = 0; i < kRows * n_tokens; ++i) {
            ASSERT_NEAR(y[i], ref.y[i], ref.bound[i])
                << gguf::type_name(type) << " " << isa_name(isa) << " threads=" << threads << " tokens=" << n_tokens
                << " row=" << i % kRows << " token=" << i / kRows;
            ASSERT_NEAR(y[i], pairs[i], 1e-4 * rms)
                << "vs scalar vec_dot: " << gguf::type_name(type) << " " << isa_name(isa) << " threads=" << threads
                << " tokens=" << n_tokens << " row=" << i % kRows << " token=" << i / kRows;
          }
        }
      }
    }
  }
}

// A larger, prompt-sized batch crosses the token-block and row-chunk boundaries of the tiled path;
// its first token alone takes the multi-threaded decode path.
TEST(KernelsMatmul, PromptBatchCrossesTileBoundaries) {
  IsaGuard guard;
  std::mt19937 rng(5);
  constexpr int64_t kRows = 131, kCols = 4352, kTokens = 133;  // 4352: two column slices of 2048 + a partial one
  Workspace ws;
  ThreadPool pool(2);
  for (GgmlType type :
       {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::F16}) {
    const auto w = random_weights(type, kRows, kCols, rng);
    const auto x = random_activations(kCols * kTokens, rng);
    const Reference ref = float_reference(type, w, kRows, kCols, x, kTokens);
    double rms = 0;
    const auto pairs = pairwise_reference(type, w, kRows, kCols, x, kTokens, &rms);
    const Matrix m{type, w.data(), kRows, kCols, gguf::row_bytes(type, kCols)};
    for (Isa isa : all_isas()) {
      set_active_isa(isa);
      std::vector<float> y(static_cast<size_t>(kRows * kTokens), NAN);
      matmul(m, x.data(), kTokens, y.data(), pool, ws);
      for (int64_t i = 0; i < kRows * kTokens; ++i) {
        ASSERT_NEAR(y[i], ref.y[i], ref.bound[i]) << gguf::type_name(type) << " " << isa_name(isa) << " i=" << i;
        ASSERT_NEAR(y[i], pairs[i], 1e-4 * rms)
            << "vs scalar vec_dot: " << gguf::type_name(type) << " " << isa_name(isa) << " i=" << i;
      }
      // The first token alone: a matrix large enough for decode to split its rows across threads.
      std::vector<float> y1(static_cast<size_t>(kRows), NAN);
      matmul(m, x.data(), 1, y1.data(), pool, ws);
      for (int64_t r = 0; r < kRows; ++r) {
        ASSERT_NEAR(y1[r], ref.y[r], ref.bound[r])
            << "decode " << gguf::type_name(type) << " " << isa_name(isa) << " row=" << r;
        ASSERT_NEAR(y1[r], pairs[r], 1e-4 * rms)
            << "decode vs scalar vec_dot: " << gguf::type_name(type) << " row=" << r;
      }
    }
  }
}

// Q4_0, IQ4_NL, Q8_0, Q4_K, Q5_K, Q2_K, Q3_K, Q6_K and IQ4_XS packed 8 rows at a time (Layout::Packed8, what the
// engine loads them into where the ISA has packed kernels): on every ISA (a packed matrix falls back to the scalar
// kernel where the ISA has none) and thread count, every token of a batch equals the float reference, equals the same
// token decoded alone bit for bit, equals the scalar packed kernel bit for bit, and for Q4_0 on x86 equals the Rows
// layout's 8-row decode kernel bit for bit (the same per-block order). Both matmul and matmul_row_parallel. 17 groups
// (an odd one out of the two-group prompt kernel) and 70 tokens (blocks of 4 with a rest of 2).
class PackedMatmul : public ::testing::TestWithParam<GgmlType> {};

TEST_P(PackedMatmul, EqualsTheReferenceAndDecodesAsInABatch) {
  const GgmlType type = GetParam();
  IsaGuard guard;
  std::mt19937 rng(11);
  constexpr int64_t kRows = 136, kTokens = 70, kChunk = 512;  // 17 groups
  const bool k_quant = type == GgmlType::Q4_K || type == GgmlType::Q5_K || type == GgmlType::Q6_K ||
                       type == GgmlType::Q2_K || type == GgmlType::Q3_K || type == GgmlType::IQ4_XS;
  const int64_t kCols = k_quant ? 17 * 256 : 4160;  // 17 super-blocks or 130 blocks
  const auto w = random_weights(type, kRows, kCols, rng);
  const auto x = random_activations(kCols * kTokens, rng);
  const Reference ref = float_reference(type, w, kRows, kCols, x, kTokens);
  const Matrix rows{type, w.data(), kRows, kCols, gguf::row_bytes(type, kCols)};
  std::vector<uint8_t> bytes(packed_bytes(rows));
  const Matrix packed = pack_rows8(rows, bytes.data());
  ASSERT_EQ(packed.layout, Layout::Packed8);
  // The same bytes, rearranged; Q4_K's and Q5_K's scales and mins are unpacked (1248 bytes per
  // 8 x 144, 1504 per 8 x 176), Q6_K gains a constant per row and alignment (1728 per 8 x 210), Q3_K's
  // scales are unpacked (912 per 8 x 110), IQ4_XS's 6-bit scales become bytes (1104 per 8 x 136).
  const size_t expected = type == GgmlType::Q4_K     ? w.size() / 1152 * 1248
                          : type == GgmlType::Q5_K   ? w.size() / 1408 * 1504
                          : type == GgmlType::Q6_K   ? w.size() / 1680 * 1728
                          : type == GgmlType::Q3_K   ? w.size() / 880 * 912
                          : type == GgmlType::IQ4_XS ? w.size() / 1088 * 1104
                                                     : w.size();
  ASSERT_EQ(bytes.size(), expected);
  Workspace ws;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (Isa isa : all_isas()) {
      set_active_isa(isa);
      std::vector<float> batch(kRows * kTokens, NAN), alone(kRows, NAN), by_rows(kRows, NAN);
      matmul(packed, x.data(), kTokens, batch.data(), pool, ws);
      for (int64_t i = 0; i < kRows * kTokens; ++i)
        ASSERT_NEAR(batch[i], ref.y[i], ref.bound[i]) << isa_name(isa) << " threads=" << threads << " i=" << i;
      for (int64_t t : {int64_t{0}, kTokens - 1, int64_t{33}}) {  // 33 last: compared below
        matmul(packed, x.data() + t * kCols, 1, alone.data(), pool, ws);
        for (int64_t r = 0; r < kRows; ++r)
          ASSERT_EQ(alone[r], batch[t * kRows + r]) << isa_name(isa) << " token " << t << " alone vs batch, row " << r;
      }
      std::vector<double> rp_batch(kRows * kTokens, NAN), rp_alone(kRows, NAN), rp_rows(kRows, NAN);
      matmul_row_parallel(packed, kChunk, x.data(), kTokens, rp_batch.data(), pool, ws);
      matmul_row_parallel(packed, kChunk, x.data() + 33 * kCols, 1, rp_alone.data(), pool, ws);
      for (int64_t r = 0; r < kRows; ++r) {
        ASSERT_EQ(rp_alone[r], rp_batch[33 * kRows + r]) << isa_name(isa) << " row-parallel alone vs batch, row " << r;
        ASSERT_NEAR(rp_batch[33 * kRows + r], ref.y[33 * kRows + r], ref.bound[33 * kRows + r]) << isa_name(isa);
      }
      // Every ISA's packed kernel is the scalar packed kernel bit for bit.
      {
        const Isa here = active_isa();
        set_active_isa(Isa::Scalar);
        std::vector<float> scalar(kRows * kTokens);
        matmul(packed, x.data(), kTokens, scalar.data(), pool, ws);
        std::vector<double> rp_scalar(kRows * kTokens);
        matmul_row_parallel(packed, kChunk, x.data(), kTokens, rp_scalar.data(), pool, ws);
        set_active_isa(here);
        for (int64_t i = 0; i < kRows * kTokens; ++i) {
          ASSERT_EQ(batch[i], scalar[i]) << isa_name(isa) << " packed vs scalar packed, i=" << i;
          ASSERT_EQ(rp_batch[i], rp_scalar[i]) << isa_name(isa) << " row-parallel packed vs scalar packed, i=" << i;
        }
      }
      // On x86 the Rows layout's 8-row Q4_0 decode kernel sums in the packed order too; elsewhere
      // the Rows decode is the ISA's vec_dot, in its own order.
#if !defined(__x86_64__) && !defined(_M_X64)
      continue;
#endif
      if (isa == Isa::Scalar || type != GgmlType::Q4_0) continue;
      matmul(rows, x.data() + 33 * kCols, 1, by_rows.data(), pool, ws);
      matmul_row_parallel(rows, kChunk, x.data() + 33 * kCols, 1, rp_rows.data(), pool, ws);
      for (int64_t r = 0; r < kRows; ++r) {
        ASSERT_EQ(alone[r], by_rows[r]) << isa_name(isa) << " packed vs Rows decode, row " << r;
        ASSERT_EQ(rp_alone[r], rp_rows[r]) << isa_name(isa) << " packed vs Rows row-parallel decode, row " << r;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, PackedMatmul,
                         ::testing::Values(GgmlType::Q4_0, GgmlType::IQ4_NL, GgmlType::Q8_0, GgmlType::Q4_K,
                                           GgmlType::Q5_K, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q6_K,
                                           GgmlType::IQ4_XS),
                         [](const auto& info) { return std::string(gguf::type_traits(info.param).name); });

// Kernels chosen by role (what the serving scheduler and `run` rely on): a token's result is the
// same bits whether it runs alone or in a batch of any size, for the matrix-vector kernels and
// for the tiles alike, on every type, ISA and thread count; matmul_row_parallel too.
TEST(KernelsMatmul, AKernelChoiceGivesEachTokenTheSameBitsInAnyBatch) {
  IsaGuard guard;
  std::mt19937 rng(21);
  constexpr int64_t kRows = 45, kCols = 1024, kTokens = 11, kChunk = 256;
  Workspace ws;
  for (GgmlType type : kComputableTypes) {
    const auto w = random_weights(type, kRows, kCols, rng);
    const auto x = random_activations(kCols * kTokens, rng);
    const Matrix m{type, w.data(), kRows, kCols, gguf::row_bytes(type, kCols)};
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      for (Isa isa : all_isas()) {
        set_active_isa(isa);
        for (Kernels k : {Kernels::MatrixVector, Kernels::Tiles}) {
          const char* kname = k == Kernels::MatrixVector ? "matrix-vector" : "tiles";
          std::vector<float> batch(kRows * kTokens), alone(kRows);
          std::vector<double> rp_batch(kRows * kTokens), rp_alone(kRows);
          matmul(m, x.data(), kTokens, batch.data(), pool, ws, k);
          matmul_row_parallel(m, kChunk, x.data(), kTokens, rp_batch.data(), pool, ws, k);
          for (int64_t t = 0; t < kTokens; t += 3) {
            matmul(m, x.data() + t * kCols, 1, alone.data(), pool, ws, k);
            matmul_row_parallel(m, kChunk, x.data() + t * kCols, 1, rp_alone.data(), pool, ws, k);
            for (int64_t r = 0; r < kRows; ++r) {
              ASSERT_EQ(alone[r], batch[t * kRows + r])
                  << gguf::type_name(type) << " " << isa_name(isa) << " " << kname << " token " << t << " row " << r;
              ASSERT_EQ(rp_alone[r], rp_batch[t * kRows + r])
                  << "row-parallel " << gguf::type_name(type) << " " << isa_name(isa) << " " << kname << " token " << t;
            }
          }
          if (k == Kernels::MatrixVector) {  // one token by size is the matrix-vector path
            matmul(m, x.data() + kCols, 1, alone.data(), pool, ws);
            for (int64_t r = 0; r < kRows; ++r) ASSERT_EQ(alone[r], batch[kRows + r]) << gguf::type_name(type);
          }
        }
      }
    }
  }
}

TEST(KernelsMatmul, PackingNeedsAPackableTypeInWholeGroupsOf8Rows) {
  std::mt19937 rng(12);
  const auto w = random_weights(GgmlType::Q4_0, 12, 64, rng);
  std::vector<uint8_t> out(w.size());
  const Matrix twelve{GgmlType::Q4_0, w.data(), 12, 64, gguf::row_bytes(GgmlType::Q4_0, 64)};
  EXPECT_FALSE(should_pack(twelve));
  EXPECT_THROW(pack_rows8(twelve, out.data()), Error);
  const auto q5 = random_weights(GgmlType::Q5_0, 8, 256, rng);
  const Matrix unpackable{GgmlType::Q5_0, q5.data(), 8, 256, gguf::row_bytes(GgmlType::Q5_0, 256)};
  EXPECT_FALSE(should_pack(unpackable));
  EXPECT_THROW(pack_rows8(unpackable, out.data()), Error);
}

TEST(KernelsMatmul, RowStrideLargerThanRowIsHonoured) {
  std::mt19937 rng(3);
  constexpr int64_t kRows = 9, kCols = 256;
  const size_t row = gguf::row_bytes(GgmlType::Q4_0, kCols), stride = row + 64;
  const auto packed = random_weights(GgmlType::Q4_0, kRows, kCols, rng);
  std::vector<uint8_t> padded(stride * kRows, 0xff);
  for (int64_t r = 0; r < kRows; ++r) std::copy_n(packed.data() + r * row, row, padded.data() + r * stride);
  const auto x = random_activations(kCols, rng);
  Workspace ws;
  ThreadPool pool(2);
  std::vector<float> a(kRows), b(kRows);
  matmul({GgmlType::Q4_0, packed.data(), kRows, kCols, row}, x.data(), 1, a.data(), pool, ws);
  matmul({GgmlType::Q4_0, padded.data(), kRows, kCols, stride}, x.data(), 1, b.data(), pool, ws);
  EXPECT_EQ(a, b);
}

TEST(KernelsMatmul, InconsistentShapesAreRefused) {
  Workspace ws;
  ThreadPool pool(1);
  std::vector<uint8_t> w(1024);
  std::vector<float> x(64), y(4);
  // 48 columns is not a whole number of 32-element Q4_0 blocks.
  EXPECT_THROW(matmul({GgmlType::Q4_0, w.data(), 2, 48, 27}, x.data(), 1, y.data(), pool, ws), Error);
  // A stride shorter than a row.
  EXPECT_THROW(matmul({GgmlType::Q4_0, w.data(), 2, 64, 20}, x.data(), 1, y.data(), pool, ws), Error);
  EXPECT_THROW(matmul({GgmlType::TQ2_0, w.data(), 1, 256, 66}, x.data(), 1, y.data(), pool, ws), Error);
}

}  // namespace
}  // namespace clusterctl::kernels::test
