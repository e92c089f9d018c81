#pragma once
#include <string>

#include "controller/config/cluster_config.h"

namespace clusterctl::launch {

// The clusterctl-worker that belongs to this clusterctl: beside the running executable (an
// install's bin dir), or in the build tree's worker/ next to controller/; else plain
// "clusterctl-worker", for PATH. Used wherever this machine starts or checks a worker.
std::string local_worker_path();

// The worker a node runs: its `worker:`, except that on this machine the default name means the
// one beside this clusterctl (local_worker_path).
std::string node_worker_path(const config::NodeConfig& n);

}  // namespace clusterctl::launch
