// Run under mpirun -np 3: ranks told that they share the cores (CoreShare: 3 single-thread ranks
// on 2 cores, as on the test cluster) give the core up while they wait (wait_policy.h), rather
// than polling it: a polling rank holds a core that a rank it waits for may need. Rank 0 computes
// (a busy loop after a barrier) before each call; the others go straight in and wait for it:
//   tcp         one-shot all-reduces: a waiting rank blocks in poll() at once (rank 0 computes
//               0.3 ms, well within the 1 ms the transport polls where the ranks fit the cores);
//   next step   broadcast_next_step: it sleeps between tests (0.3 ms; 2 ms of polling otherwise);
//   mpi         one-shot all-reduces: Open MPI cannot block, so a waiting rank yields the core
//               between tests for 1 ms (not checked here: Open MPI's own tests yield too under
//               mpi_yield_when_idle; bench --ranks 3 and 4 show what it is worth), then sleeps.
//               Rank 0 computes 3 ms: the rank must sleep after its first millisecond.
// Leaving the core is a voluntary context switch of the thread (sched_yield is none); a rank must
// leave it in at least half of the calls in which it waited long enough to. A call counts as a
// wait when it took that long, unless the scheduler took its core meanwhile and it never left it:
// on a loaded machine (ctest -j on 2 cores) a rank is often descheduled through rank 0's compute,
// or within the call, and finds the data there; such calls say nothing about how it waits. At
// least 30 calls must count. Not CPU time: on a busy machine a polling rank that yields gets little
// CPU too. The sums must be exact. Prints one line per failure and exits 1.
#include <sys/resource.h>
#include <time.h>

#include <cstdio>
#include <string>
#include <vector>

#include "collectives/algorithms/steady_wait.h"
#include "collectives/error.h"
#include "collectives/session.h"

using namespace clusterctl::collectives;

namespace {

int failures = 0;

void expect(bool ok, int rank, const std::string& what) {
  if (ok) return;
  std::printf("FAIL rank %d: %s\n", rank, what.c_str());
  ++failures;
}

double process_cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// This thread's context switches: voluntary (it blocked or slept) and involuntary (the scheduler
// gave its core to another thread).
struct Switches {
  long left = 0, taken = 0;
};
Switches switch_counts() {
  rusage u;
  getrusage(RUSAGE_THREAD, &u);
  return {u.ru_nvcsw, u.ru_nivcsw};
}

void compute_for(int64_t ns) {
  const int64_t end = steady_now_ns() + ns;
  while (steady_now_ns() < end) {
  }
}

// Runs `calls` rounds of `call`, rank 0 computing `compute_ns` before each; on the other ranks,
// how often the thread left its core in the calls in which it waited at least `waited_ns`.
template <class Call>
void check_waits(Communicator& comm, const std::string& what, int calls, int64_t compute_ns, int64_t waited_ns,
                 const Call& call) {
  constexpr int kFewestWaits = 30;
  const int me = comm.rank();
  call();  // connections and buffers set up before the measured rounds
  comm.barrier();
  const double cpu0 = process_cpu_s();
  const int64_t t0 = steady_now_ns();
  int waited = 0, left = 0;
  for (int i = 0; i < calls; ++i) {
    comm.barrier();  // (it polls, yielding: no voluntary switch) so that the others are early, not late
    if (me == 0) compute_for(compute_ns);
    const Switches before = switch_counts();
    const int64_t start = steady_now_ns();
    call();
    const int64_t took = steady_now_ns() - start;
    const Switches after = switch_counts();
    const bool left_core = after.left > before.left;
    // A call that lost its core without leaving it is long whether or not it waited: it says
    // nothing either way.
    if (took < waited_ns || (!left_core && after.taken > before.taken)) continue;
    ++waited;
    if (left_core) ++left;
  }
  const double wall = (steady_now_ns() - t0) * 1e-9, cpu = process_cpu_s() - cpu0;
  std::printf("rank %d: %s: waited in %d of %d calls and left the core in %d of them; %.1f ms on a core of %.1f ms\n",
              me, what.c_str(), waited, calls, left, cpu * 1e3, wall * 1e3);
  if (me == 0) return;
  expect(waited >= kFewestWaits, me,
         what + ": waited in only " + std::to_string(waited) + " of " + std::to_string(calls) +
             " calls (rank 0's compute did not hold the others back): too few to judge");
  expect(2 * left >= waited, me,
         what + ": a rank told the ranks share the cores left its core in only " + std::to_string(left) + " of " +
             std::to_string(waited) + " waits (it polls instead of blocking)");
}

}  // namespace

int main(int argc, char** argv) {
  int me = -1;
  try {
    auto session = open_session("mpi", argc, argv);
    me = session->rank();
    if (session->size() != 3) {
      std::printf("FAIL: run under mpirun -np 3 (got %d ranks)\n", session->size());
      return 1;
    }
    const CoreShare crowded{3, 1, 2};
    auto crowded_comm = [&](const char* transport) {
      CommOptions o;
      o.algorithm = "one-shot";
      o.transport = transport;
      o.selection_path = "/dev/null";
      o.core_share = crowded;
      return session->make_communicator(o);
    };
    auto tcp = crowded_comm("tcp"), mpi = crowded_comm("mpi");
    std::vector<double> v(256);
    bool exact = true;
    auto sum_over = [&](Communicator& comm) {
      return [&] {
        for (size_t i = 0; i < v.size(); ++i) v[i] = double(i + me);
        comm.allreduce_sum(v.data(), v.size());
        for (size_t i = 0; i < v.size(); ++i) exact = exact && v[i] == double(3 * i + 3);
      };
    };
    check_waits(*tcp, "one-shot over tcp", 300, 300'000, 150'000, sum_over(*tcp));
    check_waits(*mpi, "one-shot over mpi", 100, 3'000'000, 1'500'000, sum_over(*mpi));
    int64_t header = 0;
    check_waits(*mpi, "next step", 300, 300'000, 150'000, [&] {
      if (me == 0) ++header;
      mpi->broadcast_next_step(&header, sizeof header, 0);
    });
    expect(exact, me, "one-shot: a sum is not exact");
  } catch (const CollectiveError& e) {
    std::printf("FAIL: %s\n", e.what());
    return 1;
  }
  if (failures == 0) std::printf("rank %d: ok\n", me);
  return failures ? 1 : 0;
}
