#pragma once
// Stopping a cluster's job on every node, for `down` and for `up` undoing a failed start.
#include <memory>
#include <string>
#include <vector>

#include "controller/config/cluster_config.h"
#include "controller/preflight/node_shell.h"
#include "controller/state/cluster_state.h"

namespace clusterctl::launch {

struct JobRecord {
  size_t head = 0;                       // node index of mpirun's node
  long mpirun_pid = 0;                   // 0: never started
  std::string hnp_address;               // "tcp://<head link address>:" ("" for a one-machine job)
  std::vector<std::string> worker_dirs;  // per node: the shard folder in its ranks' command lines
  std::string token_copy;                // the API token's copy on the head node, removed once stopped
};

struct StopReport {
  std::vector<std::string> remaining;    // "node2: clusterctl-worker (pid 123)"
  std::vector<std::string> unreachable;  // "node3: connection refused ..."
  bool clean() const { return remaining.empty() && unreachable.empty(); }
  std::string describe() const;
};

// The job a state file records (head = the first node).
JobRecord job_record(const state::ClusterState& s);

// Ends mpirun's process group on the head node, then every leftover worker/orted/mpirun of this
// job on every node (in parallel), and checks that none remains; removes the token's copy. `shells` may hold nullptrs
// (or be empty): those nodes are connected to here.
StopReport stop_job_everywhere(const config::ClusterConfig& config,
                               std::vector<std::unique_ptr<preflight::NodeShell>>& shells, const JobRecord& job);

}  // namespace clusterctl::launch
