#pragma once
// `doctor`'s measure of the link between a cluster's nodes, for `plan`: one-shot all-reduces in
// doubles over all the cluster's ranks (clusterctl-worker --bench-net), launched by mpirun on the
// head node over the link as `up` launches the job, recorded with state::record_link_speed.
#include <optional>
#include <string>
#include <vector>

#include "controller/config/cluster_config.h"
#include "controller/launch/machine_probe.h"
#include "controller/preflight/preflight.h"
#include "controller/state/node_speeds.h"

namespace clusterctl::cli {

struct LinkProbe {
  std::optional<state::LinkSpeedRecord> link;  // measured and recorded
  std::string error;                           // else why not
};

// `machines`: each node's machine (launch::probe_machine). Where every node is on one machine
// (a test cluster's namespaces), the same ranks' all-reduce over shared memory is measured too and
// the link is what the cluster's costs beyond it, plus shared memory's own latency: the ranks'
// meeting on shared cores is in doctor's node probe already.
LinkProbe probe_link(const config::ClusterConfig& c, const preflight::PreflightReport& report,
                     const std::vector<launch::MachineInfo>& machines);

}  // namespace clusterctl::cli
