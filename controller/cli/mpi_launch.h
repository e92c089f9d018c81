#pragma once
// Launching clusterctl-worker under mpirun on this machine, for `run --ranks N` and
// `bench --ranks N`.
#include <optional>
#include <string>
#include <vector>

namespace clusterctl::cli {

// The value of `--ranks N` / `--ranks=N` in argv, or nullopt. Throws clusterctl::Error on a bad value.
std::optional<int> ranks_flag(int argc, char** argv);
// argv[1..] without `--ranks N`.
std::vector<std::string> args_without_ranks(int argc, char** argv);

// Runs `mpirun -np ranks clusterctl-worker args...` on this machine (launch::local_job: a
// one-node job under the cluster's rules for sharing cores) and returns its exit status.
// clusterctl-worker is looked up next to this executable, then on PATH. SIGINT,
// SIGTERM and SIGHUP sent to this process are passed on to mpirun, which ends every rank.
int launch_local_job(int ranks, const std::vector<std::string>& worker_args);

}  // namespace clusterctl::cli
