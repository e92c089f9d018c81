#pragma once
// `restart: on-failure`: a process on this machine (`clusterctl supervise NAME`, started by `up`
// and ended by `down`) that watches the cluster's /health. When it stops answering (a node lost:
// 503 naming it; a rank dead: no answer), it stops what is left of the job, drops the nodes that
// are lost or unreachable, and brings the cluster up again over the nodes that remain (a new
// split, cut and copy of what changed), so the API comes back without a human.
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

#include "controller/config/cluster_config.h"
#include "controller/state/cluster_state.h"

namespace clusterctl::launch {

struct SuperviseOptions {
  std::chrono::milliseconds poll{1000};  // between /health checks
  int misses = 3;                        // checks without an answer before a restart (503 restarts at once)
  std::chrono::seconds health_timeout{120};
  std::string controller_version;
  std::FILE* out = stdout;  // the supervisor's log
  // Resolves `layout: auto` in the restart's cluster file as `up` does (plan's choice for the nodes
  // that remain), printing the choice to `out`; unset, an unresolved auto runs split attention.
  std::function<void(config::ClusterConfig&, std::FILE* out)> resolve_layout;
};

// Runs until the cluster's state is gone (it was brought down) or SIGTERM/SIGINT. Returns 0.
int supervise(const std::string& cluster, const SuperviseOptions& options);

// Starts `<this executable> supervise NAME` in its own session, detached from this terminal, its
// output in <state dir>/NAME.supervisor.log. Returns its pid. Throws clusterctl::Error.
long start_supervisor(const std::string& cluster);

// Ends a supervisor recorded in the state (TERM, then waits up to `grace` for it to finish what it
// is doing, then KILL). False when it was not running. Checks that the pid is a supervisor of this
// cluster before signalling it.
bool stop_supervisor(const state::ClusterState& s, std::chrono::seconds grace);

// The cluster file's nodes that the state records (a restarted cluster runs on fewer), in the
// state's order. Throws clusterctl::Error when the file no longer has one of them.
config::ClusterConfig config_for_state(const config::ClusterConfig& config, const state::ClusterState& s);

}  // namespace clusterctl::launch
