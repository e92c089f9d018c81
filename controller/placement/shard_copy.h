#pragma once
// Gives every node its own shards, and only those: over SFTP into <cache_dir>/<cut key>/ on the
// node (resumable, checked by SHA-256, skipped when the node already holds an identical file),
// all nodes at once. A node that is this machine uses the controller's cut in place.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "controller/config/cluster_config.h"
#include "controller/placement/shard_cache.h"
#include "controller/placement/split.h"
#include "controller/preflight/node_shell.h"

namespace clusterctl::placement {

struct NodeCopy {
  std::string shard_dir;                 // absolute, on the node: the worker's --model
  std::vector<std::string> shard_paths;  // on the node, one per rank of the node
  uint64_t bytes_sent = 0;
  int files = 0, files_already_there = 0;
  bool in_place = false;  // this machine: the cut is used where it is
  double seconds = 0;
};

// The node's absolute path for a cache_dir that may start with "~/".
std::string absolute_on_node(preflight::NodeShell& shell, const std::string& path);

// Copies in parallel; prints a progress line on a terminal, then one line per node with the
// bytes copied. Throws launch::StepError (node, "copy shards", cause, fix) for the first node
// that failed, after every node's copy has ended. When `stop` turns non-zero (a signal noted)
// every node's copy stops within about a second, keeping its partial copy to resume from, and
// ssh::SshError(interrupted) is thrown once all have.
std::vector<NodeCopy> copy_shards(const config::ClusterConfig& config,
                                  std::vector<std::unique_ptr<preflight::NodeShell>>& shells, const ShardSet& shards,
                                  const RankSplit& split, std::FILE* out, const std::atomic<int>* stop = nullptr);

}  // namespace clusterctl::placement
