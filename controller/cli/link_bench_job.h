#pragma once
// The all-reduce benchmark (clusterctl-worker --bench-net) over a cluster's link, launched by
// mpirun on the head node as `up` launches the job: each node's worker at its link address, MPI
// pinned to the link's network, each node's tcp_interface, and the rule for ranks that share a
// machine's cores. `doctor`'s link probe and `bench net CLUSTER.yaml` run it.
#include <chrono>
#include <string>
#include <vector>

#include "controller/config/cluster_config.h"
#include "controller/launch/machine_probe.h"
#include "controller/launch/mpirun_command.h"
#include "controller/preflight/node_shell.h"
#include "controller/preflight/preflight.h"

namespace clusterctl::cli {

// Each node's machine and cores (launch::probe_machine); a node whose shell cannot be opened is a
// machine of its own.
std::vector<launch::MachineInfo> probe_machines(const config::ClusterConfig& c);

// Every rank runs `worker_args` (plus its node's --tcp-interface). `ranks_per_node`: 0 for each
// node's own `ranks:`. `machines`: probe_machines' answer (nodes of one machine
// share its cores; each node's worker by its absolute path there). `hostfile_tag` names the
// hostfile written on the head node (/tmp/clusterctl-TAG-CLUSTER.hostfile). Throws
// clusterctl::Error when a node has no address on its link.
launch::JobSpec link_bench_job(const config::ClusterConfig& c, const preflight::PreflightReport& report,
                               const std::vector<launch::MachineInfo>& machines, std::vector<std::string> worker_args,
                               int ranks_per_node, const std::string& hostfile_tag);

// Writes the job's hostfile on the head node and runs its mpirun there in the foreground, stdout
// and stderr together in `out`; the hostfile is removed after. A run past `timeout` throws
// ssh::SshError after ending mpirun's process group on the node (mpirun then ends the ranks it
// started); SIGINT or SIGTERM meanwhile does the same and throws launch::Interrupted saying what
// was stopped.
ssh::ExecResult run_link_bench(preflight::NodeShell& head, const std::string& head_name, const launch::JobSpec& job,
                               std::chrono::milliseconds timeout);

// Why a failed run's ranks stopped, from its output: the workers' own error lines, else mpirun's
// (a rank that died, a daemon that was lost), else the whole output, each node's link address
// followed by its name; the last 4 such lines, each as "\n  | LINE".
std::string why_it_stopped(const std::string& out, const config::ClusterConfig& c, const launch::JobSpec& job);

}  // namespace clusterctl::cli
