// All-reduce benchmark: our Communicator::allreduce_sum beside a raw MPI_Allreduce on the same
// buffer, at 16 KiB (a decode step's hidden state: latency bound) and 4 MiB (a prompt batch:
// bandwidth bound). Run it under mpirun: `mpirun -np 2 clusterctl-allreduce-bench [--iters N]`.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "collectives/error.h"
#include "collectives/mpi/mpi_communicator.h"

namespace {

using Clock = std::chrono::steady_clock;

// Mean seconds per call of `call` over `iters` calls after a warm-up, the slowest rank's figure.
template <class F>
double time_calls(int iters, F&& call) {
  for (int i = 0; i < 10; ++i) call();
  MPI_Barrier(MPI_COMM_WORLD);
  auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) call();
  double s = std::chrono::duration<double>(Clock::now() - t0).count() / iters, worst = 0;
  MPI_Allreduce(&s, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto mpi = clusterctl::collectives::open_mpi_session(argc, argv);
    int iters = 200;
    for (int i = 1; i + 1 < argc; ++i)
      if (!std::strcmp(argv[i], "--iters")) iters = std::atoi(argv[i + 1]);
    if (iters < 1) throw clusterctl::collectives::CollectiveError("--iters must be at least 1");
    auto comm = mpi->make_communicator();
    if (mpi->rank() == 0)
      std::printf("ranks %d\n| size | ours (us) | raw MPI_Allreduce (us) | ours GB/s (algbw) |\n|---|---|---|---|\n",
                  mpi->size());
    for (size_t bytes : {size_t(16) << 10, size_t(4) << 20}) {
      std::vector<float> buf(bytes / sizeof(float), 1.0f);
      const double ours = time_calls(iters, [&] { comm->allreduce_sum(buf.data(), buf.size()); });
      const double raw = time_calls(iters, [&] {
        MPI_Allreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(buf.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      });
      if (mpi->rank() == 0)
        std::printf("| %zu KiB | %.1f | %.1f | %.2f |\n", bytes >> 10, ours * 1e6, raw * 1e6, bytes / ours / 1e9);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
