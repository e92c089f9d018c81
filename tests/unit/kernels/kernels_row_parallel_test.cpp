// matmul_row_parallel, the split-invariant matmul of tensor parallelism: the matmul of a whole
// matrix must equal, bit for bit after rounding to float, the double sum of the matmuls of its
// column ranges, for every cut on the chunk grid, every type, every ISA, decode and batches.
// (Before the chunked sums this failed: the float order of a row's dot depended on the cut.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/kernels/kernels_test_data.h"
#include "worker/common/error.h"
#include "worker/kernels/kernels.h"

namespace clusterctl::kernels::test {
namespace {

// Rows [0, rows) x columns [k0, k1) of `w` (a view with the whole row stride) against the same
// columns of every token of x.
std::vector<double> part_matmul(const Matrix& whole, int64_t chunk, const std::vector<float>& x, int64_t n_tokens,
                                int64_t k0, int64_t k1, ThreadPool& pool, Workspace& ws) {
  const Matrix part{whole.type, whole.data + gguf::row_bytes(whole.type, static_cast<uint64_t>(k0)), whole.rows,
                    k1 - k0, whole.row_stride};
  std::vector<float> xs(static_cast<size_t>(n_tokens * (k1 - k0)));
  for (int64_t t = 0; t < n_tokens; ++t)
    std::copy(x.begin() + t * whole.cols + k0, x.begin() + t * whole.cols + k1, xs.begin() + t * (k1 - k0));
  std::vector<double> y(static_cast<size_t>(whole.rows * n_tokens), NAN);
  matmul_row_parallel(part, chunk, xs.data(), n_tokens, y.data(), pool, ws);
  return y;
}

// Cuts of [0, cols) on multiples of `chunk`: uneven two- and three-way splits and one chunk alone.
std::vector<std::vector<int64_t>> cuts_on_grid(int64_t cols, int64_t chunk) {
  const int64_t n = cols / chunk;
  return {{0, chunk, cols},
          {0, (n / 3) * chunk, (n - 1) * chunk, cols},
          {0, (2 * n / 3) * chunk, cols},
          {0, chunk, 2 * chunk, 3 * chunk, cols}};
}

TEST(KernelsRowParallel, AnySplitOnTheGridGivesTheWholeRowBitForBit) {
  IsaGuard guard;
  std::mt19937 rng(11);
  constexpr int64_t kRows = 37;    // the decode path's groups of 8 rows and a remainder
  constexpr int64_t kCols = 2560;  // more than one 2048-column slice of the tiled path
  Workspace ws;
  ThreadPool pool(2);
  for (GgmlType type : kComputableTypes) {
    const int64_t block = gguf::type_traits(type).block_size;
    const auto w = random_weights(type, kRows, kCols, rng);
    const Matrix m{type, w.data(), kRows, kCols, gguf::row_bytes(type, kCols)};
    for (int64_t chunk : {block == 256 ? int64_t{256} : int64_t{64}, int64_t{512}}) {
      for (int64_t n_tokens : {1, 2, 9, 40}) {
        const auto x = random_activations(kCols * n_tokens, rng);
        for (Isa isa : all_isas()) {
          set_active_isa(isa);
          const std::string what = std::string(gguf::type_name(type)) + " " + isa_name(isa) + " chunk " +
                                   std::to_string(chunk) + " tokens " + std::to_string(n_tokens);
          const auto whole = part_matmul(m, chunk, x, n_tokens, 0, kCols, pool, ws);
          // Sanity: the row-parallel matmul is the matmul (up to float summation order).
          std::vector<float> plain(whole.size());
          matmul(m, x.data(), n_tokens, plain.data(), pool, ws);
          double sumsq = 0;
          for (float v : plain) sumsq += static_cast<double>(v) * v;
          const double rms = std::sqrt(sumsq / static_cast<double>(plain.size()));
          for (size_t i = 0; i < whole.size(); ++i) ASSERT_NEAR(whole[i], plain[i], 1e-4 * rms) << what << " i=" << i;
          for (const auto& cuts : cuts_on_grid(kCols, chunk)) {
            std::vector<double> sum(whole.size(), 0.0);
            for (size_t p = 0; p + 1 < cuts.size(); ++p) {
              const auto y = part_matmul(m, chunk, x, n_tokens, cuts[p], cuts[p + 1], pool, ws);
              for (size_t i = 0; i < sum.size(); ++i) sum[i] += y[i];
            }
            std::string cut_text;
            for (int64_t c : cuts) cut_text += " " + std::to_string(c);
            for (size_t i = 0; i < sum.size(); ++i) {
              const float a = static_cast<float>(sum[i]), b = static_cast<float>(whole[i]);
              ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0) << what << " cut at" << cut_text << ": row " << i % kRows
                                                          << " token " << i / kRows << ": " << a << " vs whole " << b;
            }
          }
        }
      }
    }
  }
}

// Columns [k0, k1) of `whole`, laid out as the engine loads them (packed where the kernels
// read the type faster packed), against the same columns of every token, each token's chunks
// weighted by scale[t].
std::vector<double> scaled_part(const Matrix& whole, int64_t chunk, const std::vector<float>& x,
                                const std::vector<float>& scale, int64_t k0, int64_t k1, ThreadPool& pool,
                                Workspace& ws) {
  const int64_t n_tokens = static_cast<int64_t>(scale.size());
  Matrix part{whole.type, whole.data + gguf::row_bytes(whole.type, static_cast<uint64_t>(k0)), whole.rows, k1 - k0,
              whole.row_stride};
  std::vector<uint8_t> packed;
  if (should_pack(part)) {
    packed.resize(packed_bytes(part));
    part = pack_rows8(part, packed.data());
  }
  std::vector<float> xs(static_cast<size_t>(n_tokens * (k1 - k0)));
  for (int64_t t = 0; t < n_tokens; ++t)
    std::copy(x.begin() + t * whole.cols + k0, x.begin() + t * whole.cols + k1, xs.begin() + t * (k1 - k0));
  std::vector<double> y(static_cast<size_t>(whole.rows * n_tokens), NAN);
  matmul_row_parallel(part, chunk, xs.data(), n_tokens, y.data(), pool, ws, Kernels::BySize, scale.data());
  return y;
}

// The weighted form (a mixture of experts' down projection): still split-invariant bit for bit,
// packed layouts included, and the weighted sum of the plain one.
TEST(KernelsRowParallel, WeightedChunksStaySplitInvariant) {
  IsaGuard guard;
  std::mt19937 rng(12);
  constexpr int64_t kRows = 40;  // whole groups of 8, so packable types are packed
  constexpr int64_t kCols = 1536;
  Workspace ws;
  ThreadPool pool(2);
  for (GgmlType type : kComputableTypes) {
    const int64_t chunk = gguf::type_traits(type).block_size == 256 ? 256 : 128;
    const auto w = random_weights(type, kRows, kCols, rng);
    const Matrix m{type, w.data(), kRows, kCols, gguf::row_bytes(type, kCols)};
    for (int64_t n_tokens : {1, 6}) {
      const auto x = random_activations(kCols * n_tokens, rng);
      std::vector<float> scale(static_cast<size_t>(n_tokens));
      for (auto& s : scale) s = std::uniform_real_distribution<float>(0.05f, 1.0f)(rng);
      for (Isa isa : all_isas()) {
        set_active_isa(isa);
        const std::string what =
            std::string(gguf::type_name(type)) + " " + isa_name(isa) + " tokens " + std::to_string(n_tokens);
        const auto whole = scaled_part(m, chunk, x, scale, 0, kCols, pool, ws);
        const auto plain = part_matmul(m, chunk, x, n_tokens, 0, kCols, pool, ws);
        // (Up to float summation order: the plain one reads the GGUF layout, this one the packed.)
        double sumsq = 0;
        for (double v : plain) sumsq += v * v;
        const double rms = std::sqrt(sumsq / static_cast<double>(plain.size()));
        for (size_t i = 0; i < whole.size(); ++i)
          ASSERT_NEAR(whole[i], plain[i] * scale[i / kRows], 1e-4 * rms) << what << " i=" << i;
        // A token weighted in a batch (the prompt kernels) gives the bits it gives alone.
        if (n_tokens > 1 && should_pack(m)) {
          const std::vector<float> last_x(x.end() - kCols, x.end());
          const auto alone = scaled_part(m, chunk, last_x, {scale.back()}, 0, kCols, pool, ws);
          for (int64_t r = 0; r < kRows; ++r)
            ASSERT_EQ(alone[r], whole[(n_tokens - 1) * kRows + r]) << what << ": row " << r << " alone vs in a batch";
        }
        // Every ISA's weighted packed kernels are the scalar packed kernels bit for bit.
        if (isa != Isa::Scalar && should_pack(m)) {
          std::vector<uint8_t> bytes(packed_bytes(m));
          const Matrix packed = pack_rows8(m, bytes.data());
          set_active_isa(Isa::Scalar);
          std::vector<double> scalar(whole.size(), NAN);
          matmul_row_parallel(packed, chunk, x.data(), n_tokens, scalar.data(), pool, ws, Kernels::BySize,
                              scale.data());
          set_active_isa(isa);
          for (size_t i = 0; i < whole.size(); ++i)
            ASSERT_EQ(std::memcmp(&scalar[i], &whole[i], sizeof(double)), 0) << what << ": packed vs scalar, i=" << i;
        }
        for (const auto& cuts : cuts_on_grid(kCols, chunk)) {
          std::vector<double> sum(whole.size(), 0.0);
          for (size_t p = 0; p + 1 < cuts.size(); ++p) {
            const auto y = scaled_part(m, chunk, x, scale, cuts[p], cuts[p + 1], pool, ws);
            for (size_t i = 0; i < sum.size(); ++i) sum[i] += y[i];
          }
          for (size_t i = 0; i < sum.size(); ++i) {
            const float a = static_cast<float>(sum[i]), b = static_cast<float>(whole[i]);
            ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0) << what << ": row " << i % kRows << " token " << i / kRows;
          }
        }
      }
    }
  }
}

TEST(KernelsRowParallel, ChunkOffTheBlockGridIsRefused) {
  Workspace ws;
  ThreadPool pool(1);
  std::vector<uint8_t> w(4096);
  std::vector<float> x(512);
  std::vector<double> y(2);
  EXPECT_THROW(matmul_row_parallel({GgmlType::Q4_0, w.data(), 2, 256, 144}, 48, x.data(), 1, y.data(), pool, ws),
               Error);
  EXPECT_THROW(matmul_row_parallel({GgmlType::Q4_K, w.data(), 2, 512, 288}, 128, x.data(), 1, y.data(), pool, ws),
               Error);
  EXPECT_THROW(matmul_row_parallel({GgmlType::Q4_0, w.data(), 2, 256, 144}, 0, x.data(), 1, y.data(), pool, ws), Error);
}

// NEON's 8-row Q5_0 decode kernels (rows_neon.cpp) keep vec_dot's arithmetic per row: each row
// of a matrix-vector product, and each row-parallel sum of chunks times a router weight, has the
// bits of vec_dot on that row and chunk (1408 columns: DeepSeek-V2-Lite's expert down rows, the
// last chunk partial; 21 rows: two groups of 8, then 5 rows through vec_dot). x86's 8-row
// kernels reduce their lanes per block, in another order, so this holds on NEON only.
TEST(KernelsRowParallel, NeonQ5_0EightRowKernelsKeepVecDotBits) {
  IsaGuard guard;
  const auto isas = simd_isas();
  if (std::find(isas.begin(), isas.end(), Isa::Neon) == isas.end())
    GTEST_SKIP() << "NEON kernels run on aarch64 (deploy/test-aarch64.sh runs them under qemu)";
  set_active_isa(Isa::Neon);
  std::mt19937 rng(15);
  constexpr int64_t kRows = 21, kCols = 1408, kChunk = 256;
  const GgmlType type = GgmlType::Q5_0;
  const auto w = random_weights(type, kRows, kCols, rng);
  const auto x = random_activations(kCols, rng);
  const size_t stride = gguf::row_bytes(type, kCols);
  const Matrix m{type, w.data(), kRows, kCols, stride};
  std::vector<uint8_t> xq(activation_row_bytes(type, kCols));
  quantize_activations(type, x.data(), xq.data(), kCols);
  ThreadPool pool(1);
  Workspace ws;
  std::vector<float> y(kRows);
  std::vector<double> weighted(kRows);
  const float router_weight = 0.37f;
  matmul(m, x.data(), 1, y.data(), pool, ws, Kernels::MatrixVector);
  matmul_row_parallel(m, kChunk, x.data(), 1, weighted.data(), pool, ws, Kernels::MatrixVector, &router_weight);
  for (int64_t r = 0; r < kRows; ++r) {
    const uint8_t* row = w.data() + r * stride;
    EXPECT_EQ(y[r], vec_dot(type, kCols, row, xq.data())) << "row " << r;
    double sum = 0;
    for (int64_t k = 0; k < kCols; k += kChunk)
      sum += vec_dot(type, std::min(kChunk, kCols - k), row + gguf::row_bytes(type, k),
                     xq.data() + gguf::row_bytes(GgmlType::Q8_0, k)) *
             router_weight;
    EXPECT_EQ(weighted[r], sum) << "row-parallel row " << r;
  }
}

}  // namespace
}  // namespace clusterctl::kernels::test
