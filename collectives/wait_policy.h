#pragma once
// How long a rank waiting in a collective polls (retrying without sleeping) before it blocks.
// Polling answers a message microseconds sooner, but only while the rank it waits for has a core
// of its own: where this machine's ranks' threads outnumber its cores (a test cluster's
// namespaces, ranks sharing a laptop), a polling rank holds a core that a rank it waits for needs
// to compute or send, so the token takes longer than the cores force. There a waiting rank
// blocks at once.
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

// This rank's share: `ranks_on_machine` as the launcher counted them (0: unknown; then
// $OMPI_COMM_WORLD_LOCAL_SIZE, mpirun's count of this host's ranks, else 1), `threads` as the
// rank computes (at least 1), the cores this process may run on.
CoreShare this_machine_share(int ranks_on_machine, int threads);

}  // namespace clusterctl::collectives
