#pragma once
// The cluster that `status`, `logs` and `down` act on: named by its cluster file, by its name,
// or (when only one is running) not at all.
#include <optional>
#include <string>

#include "controller/state/cluster_state.h"

namespace clusterctl::cli {

// `arg`: "" (the only recorded cluster), a cluster file (*.yaml / *.yml / an existing file), or a
// cluster name. Returns nullopt when that cluster has no state (it is not up); throws
// clusterctl::Error when "" is ambiguous (naming the clusters to choose from).
std::optional<state::ClusterState> find_cluster(const std::string& arg, std::string* name = nullptr);

}  // namespace clusterctl::cli
