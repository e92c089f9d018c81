#pragma once
// How long a rank waiting in a collective polls (retrying without sleeping) before it blocks.
// Polling answers a message microseconds sooner, but only while the rank it waits for has a core
// of its own: where this machine's ranks' threads outnumber its cores (a test cluster's
// namespaces, ranks sharing a laptop), a polling rank holds a core that a rank it waits for needs
// to compute or send, so the token takes longer than the cores force. There a waiting rank
// blocks at once where it can (the tcp transport's poll() wakes it when the bytes arrive), and
// over MPI, which cannot block, it pauses between tests (pause_crowded_wait).
#include <cstdint>

namespace clusterctl::collectives {

// The ranks that share this machine's cores, for the wait rule.
struct CoreShare {
  int ranks = 1;    // ranks on this machine, this one included (namespaces and VMs of one host count together)
  int threads = 1;  // compute threads per rank
  int cores = 1;    // this machine's cores
};

// Whether every rank's threads have a core of their own (ranks x threads <= cores): a waiting
// rank may poll; else it blocks at once.
bool ranks_fit_cores(const CoreShare& share);

// One pause between two tests of a wait where the ranks do not fit the cores (Open MPI's
// messages, which no call blocks on), `waited_ns` into the wait: for its first millisecond the
// rank yields the core (a rank computing beside it gets it at once, and the message is seen at
// this rank's next turn), then sleeps 20 us (a longer wait is no rank beside it computing but a
// slow link or a stalled peer; a timer's wake-ups every ~70 us would take the core from a rank
// computing beside it, so they come only then). docs/tuning.md (the wait rule) has the figures.
void pause_crowded_wait(int64_t waited_ns);

// This rank's share: `ranks_on_machine` as the launcher counted them (0: unknown; then
// $OMPI_COMM_WORLD_LOCAL_SIZE, mpirun's count of this host's ranks, else 1), `threads` as the
// rank computes (at least 1), the cores this process may run on.
CoreShare this_machine_share(int ranks_on_machine, int threads);

}  // namespace clusterctl::collectives
