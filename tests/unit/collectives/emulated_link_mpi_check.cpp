// Run under mpirun -np 2 --mca btl tcp,self: the link emulator over MPI point-to-point, as
// EmulatedLink.WaitingForAnArrivalTimeKeepsThisRanksSendsMoving tests it over the tcp transport.
// Rank 1's outgoing link has 3 s of latency, rank 0's none. Rank 0 sends rank 1 128 MiB, then
// waits for rank 1's 8 bytes, which arrive 3 s after they left. Over Open MPI's TCP transport a
// message that large is a rendezvous whose sender moves it only inside MPI calls (over shared
// memory the receiver could copy it alone), so rank 1 has it before rank 0's wait ends only if
// rank 0 kept its transfers moving while it waited. Prints one line per failure and exits 1.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "collectives/algorithms/emulated_link.h"
#include "collectives/algorithms/steady_wait.h"
#include "collectives/error.h"
#include "collectives/mpi/mpi_communicator.h"

using namespace clusterctl::collectives;

int main(int argc, char** argv) {
  try {
    auto session = open_mpi_session(argc, argv);
    if (session->size() != 2) throw CollectiveError("run this under mpirun -np 2");
    const int me = session->rank();
    const size_t big = size_t(128) << 20;
    std::vector<char> data(big, me == 0 ? 'x' : 0);
    int64_t when = 0;  // rank 0: its wait ended; rank 1: it had the data
    {
      auto mpi = make_mpi_transport();
      EmulatedLinkTransport link(
          *mpi, parse_link_spec(me == 0 ? "latency=0us,bandwidth=100gbit" : "latency=3s,bandwidth=100gbit"));
      int64_t word = 42;
      link.begin_stream();
      const size_t h = me == 0 ? link.post_recv({1, &word, sizeof word}) : link.post_recv({0, data.data(), big});
      if (me == 0)
        link.post_send({1, data.data(), big});
      else
        link.post_send({0, &word, sizeof word});
      link.wait_recv(h);
      when = steady_now_ns();
      link.wait_all();
    }
    auto comm = session->make_communicator();
    int64_t all[2] = {};
    comm->gather(&when, sizeof when, all, 0);
    int failures = 0;
    if (me == 1)
      for (size_t i = 0; i < big; ++i)
        if (data[i] != 'x') {
          std::printf("FAIL: rank 1 received byte %zu as %d, not 'x'\n", i, data[i]);
          ++failures;
          break;
        }
    if (me == 0 && all[1] >= all[0])
      std::printf(
          "FAIL: rank 1 had rank 0's 128 MiB %.3f s after rank 0's 3 s wait ended (rank 0's send stood "
          "still while it waited)\n",
          static_cast<double>(all[1] - all[0]) / 1e9),
          ++failures;
    double x = failures;
    comm->allreduce_sum(&x, 1);
    if (me == 0 && x == 0) std::printf("rank 0's transfers kept moving through its emulated wait\n");
    return x == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
