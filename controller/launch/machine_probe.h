#pragma once
// Which machine each node is, and its cores: nodes of one machine (a test cluster's namespaces,
// VMs of one host, one host listed twice) share its cores and memory while the job runs, so `up`
// shares the cores among all their ranks and `doctor` probes their ranks together.
#include <map>
#include <string>
#include <vector>

#include "controller/config/cluster_config.h"
#include "controller/preflight/node_shell.h"

namespace clusterctl::launch {

struct MachineInfo {
  int cores = 1;
  // The boot id; "" where it cannot be read. Not the hostname: two machines may share one, and
  // namespaces or containers of one machine often have their own.
  std::string machine_id;
  std::string worker;  // the worker's absolute path there ("" when not found)
};

// Asks the node in one round trip. orted starts the worker by the name on mpirun's command line,
// without the login PATH that preflight searched (e.g. /opt/homebrew/bin) and without expanding
// "~": so `worker` is resolved to an absolute path on that node. A node that does not answer is
// a machine of its own with one core.
MachineInfo probe_machine(preflight::NodeShell& shell, const std::string& worker);

// probe_machine's answer: three lines, cores, boot id and worker path, each possibly empty.
MachineInfo parse_machine_probe(const std::string& out);

// The key nodes are grouped by: the boot id, or the node's own name where it is unknown (a node
// whose machine cannot be told is a machine of its own).
std::string machine_key(const MachineInfo& machine, const config::NodeConfig& node);

struct MachineLoad {
  int ranks = 0;  // of all the machine's nodes
  int nodes = 0;
  int cores = 1;
};

// Each machine's load by machine_key; `machines[i]` is `nodes[i]`'s.
std::map<std::string, MachineLoad> machine_loads(const std::vector<config::NodeConfig>& nodes,
                                                 const std::vector<MachineInfo>& machines);

}  // namespace clusterctl::launch
