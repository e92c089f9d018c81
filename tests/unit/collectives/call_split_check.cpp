// Run under mpirun -np 3: the split of time in collective calls into the collectives' cost on the
// critical path ("link") and waiting for slower ranks (Communicator::settle_call_log).
//   adds up   on every rank, link + wait = its time in collective calls, after more calls than the
//             log holds (so the communicator settles by itself in between);
//   the same  link (a sum of per-call minimums over ranks) is the same bits on every rank;
//   imbalance rank 1 sleeps 200 ms before each of 10 all-reduces: the others' extra time shows as
//             wait, not as link, and the sleeper, last to arrive every time, waits for no one;
//   link      over an emulated 2 ms link with no imbalance, each call's 2 ms is link.
// The bounds are halves of injected delays (sleep_for and the emulator never end early), far
// from what the calls themselves take: even under ctest -j on 2 cores, where a call whose ranks
// must get a core back from other tests took up to 25 ms (2 s injected, 1 s allowed). Prints one
// line per failure and exits 1.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

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

std::string ms(double seconds) { return std::to_string(seconds * 1e3) + " ms"; }

// Every rank's settled split adds up to its time in calls; the link is the same on every rank.
void check_adds_up(Communicator& comm, const std::string& what) {
  comm.settle_call_log();
  const CommStats& s = comm.stats();
  const double sum = s.split.critical_seconds + s.split.waiting_seconds;
  expect(std::fabs(sum - s.seconds) <= 1e-9 * std::max(1.0, s.seconds), comm.rank(),
         what + ": link " + ms(s.split.critical_seconds) + " + wait " + ms(s.split.waiting_seconds) +
             " != time in calls " + ms(s.seconds));
  std::vector<double> links(static_cast<size_t>(comm.size()));
  double mine = s.split.critical_seconds;
  comm.gather(&mine, sizeof mine, links.data(), 0);
  if (comm.rank() == 0)
    for (size_t r = 1; r < links.size(); ++r)
      expect(links[r] == links[0], 0,
             what + ": rank " + std::to_string(r) + "'s link " + ms(links[r]) + " != rank 0's " + ms(links[0]));
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
    std::vector<double> v(2048, 1.0);

    {  // MPI_Allreduce: balanced calls past the log's capacity, then one sleeping rank.
      CommOptions o;
      o.algorithm = "mpi";
      o.selection_path = "/dev/null";
      auto comm = session->make_communicator(o);
      comm->tag_calls(1);
      for (size_t i = 0; i < Communicator::kCallLogCapacity * 3 / 2; ++i) {
        comm->allreduce_sum(v.data(), v.size());
        if (i % 100 == 0) comm->broadcast(v.data(), 64, 0);
      }
      comm->settle_call_log();
      const double before = comm->stats().seconds;
      comm->tag_calls(2);
      const int calls = 10;
      const double sleep_s = 0.200;
      for (int i = 0; i < calls; ++i) {
        if (me == 1) std::this_thread::sleep_for(std::chrono::duration<double>(sleep_s));
        comm->allreduce_sum(v.data(), v.size());
      }
      comm->tag_calls(0);
      comm->settle_call_log();
      const double in_phase = comm->stats().seconds - before;
      const CallSplit balanced = comm->take_settled(1), imbalanced = comm->take_settled(2);
      expect(std::fabs(balanced.critical_seconds + balanced.waiting_seconds + imbalanced.critical_seconds +
                       imbalanced.waiting_seconds - comm->stats().seconds) <= 1e-9,
             me, "the tags' splits do not add up to the time in calls");
      check_adds_up(*comm, "MPI_Allreduce");
      const double injected = calls * sleep_s;
      std::printf("rank %d: imbalance phase: %s in calls = link %s + wait %s (injected %s on rank 1)\n", me,
                  ms(in_phase).c_str(), ms(imbalanced.critical_seconds).c_str(), ms(imbalanced.waiting_seconds).c_str(),
                  ms(injected).c_str());
      expect(imbalanced.critical_seconds < injected / 2, me,
             "rank 1's sleep counted as link: " + ms(imbalanced.critical_seconds) + " of " + ms(injected));
      if (me == 1)
        expect(imbalanced.waiting_seconds < injected / 2, me,
               "the sleeping rank, always last, waited " + ms(imbalanced.waiting_seconds));
      else
        expect(imbalanced.waiting_seconds > injected / 2, me,
               "waiting for the sleeping rank shows as only " + ms(imbalanced.waiting_seconds) + " of " + ms(injected));
    }

    {  // Our one-shot over an emulated 2 ms link, balanced: the link's latency is link, call by call.
      CommOptions o;
      o.algorithm = "one-shot";
      o.transport = "mpi";
      o.selection_path = "/dev/null";
      o.emulate_link = "latency=2ms,bandwidth=10gbit";
      auto comm = session->make_communicator(o);
      const int calls = 40;
      for (int i = 0; i < calls; ++i) comm->allreduce_sum(v.data(), v.size());
      check_adds_up(*comm, "one-shot, emulated link");
      const CallSplit s = comm->stats().split;
      std::printf("rank %d: emulated 2 ms link: link %s + wait %s over %d calls\n", me, ms(s.critical_seconds).c_str(),
                  ms(s.waiting_seconds).c_str(), calls);
      expect(s.critical_seconds > calls * 0.002 / 2, me,
             "an emulated 2 ms link shows as only " + ms(s.critical_seconds) + " of link over " +
                 std::to_string(calls) + " calls");
    }
  } catch (const CollectiveError& e) {
    std::printf("FAIL: %s\n", e.what());
    return 1;
  }
  if (failures == 0) std::printf("rank %d: ok\n", me);
  return failures ? 1 : 0;
}
