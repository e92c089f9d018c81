// kernels_bench: speed of the CPU kernels beside the machine's memory bandwidth.
//   matvec (decode): GB/s of weights streamed by matmul with one token (--decode-tokens: a verify
//     pass's or a batch of streams' few), per type. The matrix is replicated past the size of the
//     last-level cache and the copies are used in turn, so the weights come from DRAM as they do
//     when a model decodes.
//   matmul (prompt): GFLOP/s of matmul with a batch of tokens (2*rows*cols*tokens flops).
//   bandwidth: a plain multi-threaded read of a large buffer (the bound for matvec).
// Matrices are in the layout the engine loads them into (packed where kernels::should_pack).
// Every figure is the fastest of repeated calls (the machine is shared and noisy).
// Usage: kernels_bench [--rows R] [--cols C] [--tokens T] [--threads 1,2] [--types Q4_0,Q8_0,...]
//                      [--isa scalar|avx2|avx512|neon] [--seconds S] [--no-matmul] [--hot]
//                      [--row-parallel CHUNK] [--decode-tokens N]
//   --row-parallel CHUNK: time matmul_row_parallel (split-invariant sums in chunks of CHUNK
//     columns, folded into double) instead of matmul, to measure what the chunking costs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "worker/common/error.h"
#include "worker/kernels/kernels.h"

using namespace clusterctl;
using namespace clusterctl::kernels;

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int64_t rows = 2048, cols = 8192, tokens = 512, decode_tokens = 1;
  std::vector<int> threads = {1, 2};
  std::vector<GgmlType> types;  // default: every computable type
  double seconds = 1.0;
  bool matmul = true;
  bool hot = false;                // matvec on one cache-resident copy: the kernels' compute speed
  int64_t row_parallel_chunk = 0;  // > 0: time matmul_row_parallel with this chunk
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  std::stringstream computable(computable_type_names());
  for (std::string name; computable >> name;) o.types.push_back(*gguf::type_from_name(name));
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Error("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--rows")
      o.rows = std::stoll(value());
    else if (a == "--cols")
      o.cols = std::stoll(value());
    else if (a == "--tokens")
      o.tokens = std::stoll(value());
    else if (a == "--decode-tokens")
      o.decode_tokens = std::stoll(value());
    else if (a == "--seconds")
      o.seconds = std::stod(value());
    else if (a == "--no-matmul")
      o.matmul = false;
    else if (a == "--hot")
      o.hot = true;
    else if (a == "--row-parallel")
      o.row_parallel_chunk = std::stoll(value());
    else if (a == "--threads") {
      o.threads.clear();
      for (const auto& t : split(value())) o.threads.push_back(std::stoi(t));
    } else if (a == "--types") {
      o.types.clear();
      for (const auto& t : split(value())) {
        auto type = gguf::type_from_name(t);
        if (!type || !is_computable(*type)) throw Error("--types: " + t + " is not a computable type");
        o.types.push_back(*type);
      }
    } else if (a == "--isa") {
      const std::string v = value();
      const auto isa = isa_from_name(v);
      if (!isa) throw Error("--isa: unknown ISA " + v + " (scalar, avx2, avx512, neon)");
      set_active_isa(*isa);
    } else {
      throw Error("unknown option " + a + "; see the usage at the top of kernels_bench.cpp");
    }
  }
  return o;
}

// Runs fn repeatedly for about `seconds` and returns the fastest call's seconds. The machine
// is shared: the fastest call is the one least disturbed by other processes.
template <typename Fn>
double time_per_call(Fn&& fn, double seconds) {
  fn();  // warm up
  double best = 1e30, total = 0;
  int calls = 0;
  while (total < seconds || calls < 3) {
    const auto start = Clock::now();
    fn();
    const double t = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::min(best, t);
    total += t;
    ++calls;
  }
  return best;
}

// Reads 8 MiB segments of a 256 MiB buffer in turn (so every read comes from DRAM, as the
// matvec's weights do) and reports the fastest segment, measured like the matvecs.
double read_bandwidth(ThreadPool& pool, double seconds) {
  constexpr size_t kSegment = (8ull << 20) / sizeof(uint64_t), kSegments = 32;
  std::vector<uint64_t> buf(kSegment * kSegments, 1);
  std::vector<uint64_t> sums(static_cast<size_t>(pool.size()) * 8);
  size_t next = 0;
  const double t = time_per_call(
      [&] {
        const uint64_t* seg = buf.data() + (next++ % kSegments) * kSegment;
        pool.run([&](int ith, int nth) {
          const size_t b = kSegment * static_cast<size_t>(ith) / static_cast<size_t>(nth);
          const size_t e = kSegment * static_cast<size_t>(ith + 1) / static_cast<size_t>(nth);
          uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          for (size_t i = b; i + 4 <= e; i += 4) {
            s0 += seg[i];
            s1 += seg[i + 1];
            s2 += seg[i + 2];
            s3 += seg[i + 3];
          }
          sums[static_cast<size_t>(ith) * 8] += s0 + s1 + s2 + s3;  // kept so the reads are not optimised away
        });
      },
      seconds);
  return static_cast<double>(kSegment * sizeof(uint64_t)) / t / 1e9;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  std::printf(
      "kernels_bench: ISA %s, matrix %lld x %lld, prompt batch %lld tokens%s\n", isa_name(active_isa()),
      static_cast<long long>(o.rows), static_cast<long long>(o.cols), static_cast<long long>(o.tokens),
      o.row_parallel_chunk > 0 ? (", row-parallel in chunks of " + std::to_string(o.row_parallel_chunk)).c_str() : "");
  for (int threads : o.threads) {
    ThreadPool pool(threads);
    Workspace ws;
    std::printf("\n== %d thread(s): memory read bandwidth %.1f GB/s (the bound for matvec)\n", threads,
                read_bandwidth(pool, o.seconds));
    std::printf("%-6s %-8s %12s %14s %14s %16s\n", "type", "layout", "MB/matrix", "matvec GB/s", "matvec ms",
                "matmul GFLOP/s");
    for (GgmlType type : o.types) {
      const auto w = random_weight_rows(type, o.rows, o.cols, 1);
      const size_t row_bytes = gguf::row_bytes(type, static_cast<uint64_t>(o.cols));
      const size_t matrix_bytes = w.size();
      // Enough copies to overflow a 32 MiB last-level cache several times over.
      const size_t copies = o.hot ? 1 : std::max<size_t>(2, (256ull << 20) / matrix_bytes);
      std::vector<uint8_t> cold(matrix_bytes * copies);
      for (size_t c = 0; c < copies; ++c) std::memcpy(cold.data() + c * matrix_bytes, w.data(), matrix_bytes);
      // The layout the engine loads the matrix into: packed where the kernels read it faster.
      const bool packed = should_pack({type, w.data(), o.rows, o.cols, row_bytes});
      std::vector<uint8_t> packed_w, packed_cold;
      auto matrix_at = [&](const uint8_t* rows_data, std::vector<uint8_t>& store, size_t offset) {
        const Matrix rows{type, rows_data, o.rows, o.cols, row_bytes};
        if (!packed) return rows;
        return pack_rows8(rows, store.data() + offset);
      };
      if (packed) {
        packed_w.resize(packed_bytes({type, w.data(), o.rows, o.cols, row_bytes}));
        packed_cold.resize(packed_w.size() * copies);
      }
      std::vector<Matrix> cold_matrices;
      for (size_t c = 0; c < copies; ++c)
        cold_matrices.push_back(matrix_at(cold.data() + c * matrix_bytes, packed_cold, c * packed_w.size()));
      const Matrix hot_matrix = matrix_at(w.data(), packed_w, 0);
      std::mt19937 rng(2);
      std::normal_distribution<float> normal(0.f, 1.f);
      const int64_t batch = std::max(o.tokens, o.decode_tokens);
      std::vector<float> x(static_cast<size_t>(o.cols * batch));
      for (auto& v : x) v = normal(rng);
      std::vector<float> y(static_cast<size_t>(o.rows * batch));
      std::vector<double> yd(o.row_parallel_chunk > 0 ? y.size() : 0);
      auto run = [&](const Matrix& m, int64_t n_tokens) {
        if (o.row_parallel_chunk > 0)
          matmul_row_parallel(m, o.row_parallel_chunk, x.data(), n_tokens, yd.data(), pool, ws);
        else
          matmul(m, x.data(), n_tokens, y.data(), pool, ws);
      };

      size_t next = 0;
      const double t_vec = time_per_call([&] { run(cold_matrices[next++ % copies], o.decode_tokens); }, o.seconds);
      double gflops = 0;
      if (o.matmul) {
        const double t_mat = time_per_call([&] { run(hot_matrix, o.tokens); }, o.seconds);
        gflops = 2.0 * static_cast<double>(o.rows * o.cols * o.tokens) / t_mat / 1e9;
      }
      std::printf("%-6s %-8s %12.1f %14.1f %14.3f %16.1f\n", std::string(gguf::type_name(type)).c_str(),
                  packed ? "packed" : "rows", static_cast<double>(matrix_bytes) / 1e6,
                  static_cast<double>(matrix_bytes) / t_vec / 1e9, t_vec * 1e3, gflops);
      std::fflush(stdout);
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "kernels_bench: %s\n", e.what());
  return 1;
}
