#pragma once
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "controller/config/cluster_config.h"

namespace clusterctl::preflight {

enum class CheckStatus { ok, warn, fail, skipped };
std::string_view status_name(CheckStatus s);

// One line of the preflight table. A failure names the node, the check, the cause and the fix.
struct CheckResult {
  std::string node;   // a node name, or "controller" for checks made on this machine
  std::string check;  // ssh, os/arch, memory, disk, link, worker, mpirun, reach, head ssh
  CheckStatus status = CheckStatus::ok;
  std::string detail;  // what was found (shown for every status)
  std::string cause;   // why it failed (fail/warn)
  std::string fix;     // what the user should do (fail/warn)
};

// What preflight learned about a node, for the steps after it (placement, launch).
struct NodeFacts {
  bool reachable = false;  // SSH (or local shell) works
  std::string os, arch;    // uname -s, uname -m
  std::optional<uint64_t> mem_available;
  std::optional<uint64_t> mem_usable;    // mem_available, capped by the node's `memory:` limit
  std::optional<uint32_t> link_address;  // the node's IPv4 address on its link
  int link_prefix = 0;                   // its network's prefix length (for the link's CIDR)
  std::string link_interface;
  std::optional<std::string> worker_version;
  double share = 0;          // of the model, after "by memory" is resolved
  uint64_t need_bytes = 0;   // shard + KV cache estimate
  uint64_t shard_bytes = 0;  // the two parts of need_bytes
  uint64_t kv_bytes = 0;
  // Free bytes where the node keeps its shards, plus what earlier cuts of this model take there
  // (a copy replaces those); none for this machine (it uses the cut in place) or when unknown.
  std::optional<uint64_t> disk_available;
};

// The model file the checks sized the nodes for (empty path: unknown, e.g. not pulled yet).
struct ModelSize {
  std::string path;
  uint64_t tensor_bytes = 0;
  uint64_t parameters = 0;  // tensor elements
};

struct PreflightReport {
  std::vector<CheckResult> results;  // in table order: controller, then node by node, then reach
  std::vector<NodeFacts> nodes;      // index = node index in the config
  ModelSize model;
  bool ok() const;  // no check failed
};

struct PreflightOptions {
  std::string controller_version;  // the worker must report the same
  // launch::interrupt_signal(): when it turns non-zero, each node's running check is stopped there
  // and no further one starts.
  const std::atomic<int>* stop = nullptr;
};

// Runs every check on every node (connections and probes in parallel, one thread per node).
// Never throws for node problems: they become failed checks. Stopped by `options.stop`, it throws
// ssh::SshError(interrupted) whose fix says whether the checks were stopped on every node.
PreflightReport run_preflight(const config::ClusterConfig& config, const PreflightOptions& options);

}  // namespace clusterctl::preflight
