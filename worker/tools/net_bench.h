#pragma once
// `clusterctl bench net --ranks N`: the all-reduce benchmark every rank of the job runs
// (clusterctl-worker --bench-net): OSU-style, sizes 1 KiB .. 64 MiB, each of our algorithms in
// each wire format beside MPI_Allreduce, median and p99 latency (the slowest rank of each
// iteration) and bus bandwidth; then the fastest exact algorithm per size becomes this rank
// count's rules in the selection table the workers read (collectives::default_selection_path()).
#include "collectives/session.h"

namespace clusterctl::cli {

// True when argv asks for the net benchmark.
bool wants_net_bench(int argc, char** argv);
int net_bench(collectives::Session& session, int argc, char** argv);

}  // namespace clusterctl::cli
