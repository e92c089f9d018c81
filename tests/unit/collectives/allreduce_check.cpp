// Run under mpirun -np N (1..5): every all-reduce algorithm over each transport (MPI point-to-point
// and the backend's own TCP mesh) in every wire format, at sizes that are
// not multiples of the rank count or of the 32-value block, against the exact sum computed here
// from every rank's (seeded) data. Exact formats must match bit for bit (the exact double sum in
// rank order, which is also what one rank computes), compressed ones stay within their stated
// bound, and every rank must end with the same bits; the same calls started together and waited
// for once (the overlap) give the same bits again. Prints one line per failure and exits 1.
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "collectives/algorithms/allreduce.h"
#include "collectives/error.h"
#include "collectives/session.h"

using namespace clusterctl::collectives;

namespace {

// Rank r's vector: floats (as the model's row-parallel partials are), of mixed signs and scales.
std::vector<double> data_of(int rank, size_t n, uint64_t seed) {
  std::mt19937_64 g(seed * 1000003 + static_cast<uint64_t>(rank));
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<double>(d(g) * (i % 7 == 0 ? 100.0f : 1.0f));
  return v;
}

uint64_t hash(const std::vector<double>& v) {
  uint64_t h = 1469598103934665603ull;
  for (double x : v) {
    uint64_t u;
    std::memcpy(&u, &x, 8);
    h = (h ^ u) * 1099511628211ull;
  }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto session = open_session("mpi", argc, argv);
    const int N = session->size(), me = session->rank();
    int failures = 0;
    const size_t sizes[] = {1, 3, 31, 33, 517, 2048 + 5, 12289, 100003};
    // Each transport, and the emulated link's streaming over each (the pipelined ring) once.
    const struct {
      TransportKind tk;
      const char* link;
    } paths[] = {{TransportKind::kMpi, ""},
                 {TransportKind::kTcp, ""},
                 {TransportKind::kTcp, "latency=5us,bandwidth=100gbit"},
                 {TransportKind::kMpi, "latency=5us,bandwidth=100gbit"}};
    for (const auto& path : paths)
      for (Algorithm a : kAlgorithms) {
        for (WireFormat f : kWireFormats) {
          const TransportKind tk = path.tk;
          if (a == Algorithm::kMpi && (f != WireFormat::kDouble || tk != TransportKind::kMpi)) continue;
          if (*path.link && (a != Algorithm::kRing || f == WireFormat::kFloat32)) continue;
          CommOptions o;
          o.algorithm = std::string(algorithm_name(a));
          o.transport = std::string(transport_name(tk));
          o.wire_format = std::string(wire_format_name(f));
          o.emulate_link = path.link;
          o.selection_path = "/dev/null";  // no table from this machine's home
          o.overlap = "on";                // these ranks share one machine, where auto would not
          auto comm = session->make_communicator(o);
          const std::string what = std::string(algorithm_name(a)) + " over " + std::string(transport_name(tk)) +
                                   (*path.link ? " (emulated link)" : "") + " " + std::string(wire_format_name(f));
          if (tk == TransportKind::kTcp && N > 1 && comm->describe().find("(tcp ") == std::string::npos)
            std::printf("FAIL rank %d: %s: the communicator has no tcp mesh: %s\n", me, what.c_str(),
                        comm->describe().c_str()),
                ++failures;
          // The ring also at a size whose chunks are pipelined in pieces (allreduce.cpp, kRingPiece).
          std::vector<size_t> cases(std::begin(sizes), std::end(sizes));
          if (a == Algorithm::kRing) cases.push_back(400009);
          std::vector<std::vector<double>> results;  // each case's sum, for the overlapped calls below
          for (size_t n : cases) {
            const uint64_t seed = n * 7 + 1;
            std::vector<double> exact(n, 0.0), abs_sum(n, 0.0);
            for (int r = 0; r < N; ++r) {
              const auto v = data_of(r, n, seed);
              for (size_t i = 0; i < n; ++i) exact[i] += v[i], abs_sum[i] += std::fabs(v[i]);
            }
            std::vector<double> got = data_of(me, n, seed);
            comm->allreduce_sum(got.data(), n);
            results.push_back(got);
            // The bound per element for compressed formats: one rounding per hop, at most N + 1 hops.
            double unit = 0;
            if (f == WireFormat::kFloat32) unit = std::ldexp(1.0, -24);
            if (f == WireFormat::kBf16) unit = std::ldexp(1.0, -8);
            size_t bad = 0;
            double worst = 0;
            for (size_t i = 0; i < n; ++i) {
              double bound = (N + 1) * unit * abs_sum[i];
              if (f == WireFormat::kQ8Block) {  // half a step of the largest block the value passed through
                double block_max = 0;
                for (size_t j = i / 32 * 32; j < std::min(n, i / 32 * 32 + 32); ++j)
                  block_max = std::max(block_max, abs_sum[j]);
                // chunked algorithms cut blocks elsewhere: the neighbourhood of 64 covers both cuts
                for (size_t j = i >= 32 ? i - 32 : 0; j < std::min(n, i + 32); ++j)
                  block_max = std::max(block_max, abs_sum[j]);
                bound = (N + 1) * block_max / 254 * 1.001;
              }
              const double err = std::fabs(got[i] - exact[i]);
              // Exact formats: double (any order: float partials sum exactly in double); float32 with
              // one rank is exact too (the partials are floats).
              if ((f == WireFormat::kDouble || (f == WireFormat::kFloat32 && N == 1)) ? got[i] != exact[i]
                                                                                      : err > bound)
                ++bad, worst = std::max(worst, err);
            }
            if (bad)
              std::printf("FAIL rank %d of %d: %s n=%zu: %zu values off (worst %.3g)\n", me, N, what.c_str(), n, bad,
                          worst),
                  ++failures;
            // Every rank the same bits.
            const uint64_t h = hash(got);
            std::vector<uint64_t> all(N);
            comm->gather(&h, sizeof h, all.data(), 0);
            if (me == 0)
              for (int r = 1; r < N; ++r)
                if (all[r] != all[0])
                  std::printf("FAIL: %s n=%zu: rank %d's result differs from rank 0's\n", what.c_str(), n, r),
                      ++failures;
          }
          // Every case started at once and waited for together (start_allreduce_sum: a prompt's
          // overlapped all-reduces) runs beside this thread where there are ranks to wait for, and
          // gives the same bits as the calls one by one.
          if (N > 1 && !comm->overlaps())
            std::printf("FAIL rank %d: %s: the communicator does not overlap\n", me, what.c_str()), ++failures;
          std::vector<std::vector<double>> started;
          for (size_t n : cases) started.push_back(data_of(me, n, n * 7 + 1));
          const uint64_t overlapped = comm->stats().overlapped_calls;
          for (auto& v : started) comm->start_allreduce_sum(v.data(), v.size());
          comm->wait_allreduces();
          const uint64_t ran = comm->stats().overlapped_calls - overlapped;
          if (ran != (N > 1 ? cases.size() : 0))
            std::printf("FAIL rank %d: %s: %" PRIu64 " of %zu started all-reduces ran overlapped\n", me, what.c_str(),
                        ran, cases.size()),
                ++failures;
          for (size_t k = 0; k < cases.size(); ++k)
            if (std::memcmp(started[k].data(), results[k].data(), cases[k] * sizeof(double)) != 0)
              std::printf("FAIL rank %d: %s n=%zu: the started all-reduce differs from the call\n", me, what.c_str(),
                          cases[k]),
                  ++failures;
        }
      }
    int total = 0;
    {
      auto comm = session->make_communicator();
      double x = failures;
      comm->allreduce_sum(&x, 1);
      total = static_cast<int>(x);
    }
    if (me == 0) std::printf("%d ranks: %s\n", N, total ? "FAILED" : "all algorithms, transports and formats agree");
    return total ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
