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

// The command line `clusterctl VERB [CLUSTER.yaml | NAME] [--json]` of `status` and `down`, and
// the cluster it names (find_cluster).
struct ClusterVerbArgs {
  bool json = false;
  std::string name;                          // "" when no cluster is recorded at all
  std::optional<state::ClusterState> state;  // nullopt: that cluster is not up
};
// `usage`: the verb's help text; `json_help`: what --json prints. nullopt after --help.
std::optional<ClusterVerbArgs> parse_cluster_verb(int argc, char** argv, const std::string& usage,
                                                  const std::string& json_help);

}  // namespace clusterctl::cli
