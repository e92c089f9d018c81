#pragma once
// How the model is divided: one weight per rank, from the nodes' weights in the cluster file or,
// for `weight: by memory`, from the free memory preflight measured (capped by `memory:`).
#include <string>
#include <vector>

#include "controller/config/cluster_config.h"
#include "controller/preflight/preflight.h"

namespace clusterctl::placement {

struct RankSplit {
  std::vector<double> weights;  // one per rank, in rank order (node by node); empty = even
  std::vector<int> first_rank;  // of each node
  int total_ranks = 0;
  std::string text;  // "1,1,1" (what `shard --split` and the state file show)
};

// A node's share is divided evenly among its ranks. Shares by memory are rounded to whole
// percent so that a little change in free memory between two `up`s gives the same cut (and the
// shards already on the nodes are reused). Equal weights give an even split.
RankSplit rank_split(const config::ClusterConfig& config, const preflight::PreflightReport& report);

}  // namespace clusterctl::placement
