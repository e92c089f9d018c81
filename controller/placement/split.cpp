#include "controller/placement/split.h"

#include <algorithm>
#include <cmath>

#include "worker/model/shard_plan.h"

namespace clusterctl::placement {

RankSplit rank_split(const config::ClusterConfig& c, const preflight::PreflightReport& report) {
  RankSplit s;
  std::vector<double> node_share(c.nodes.size());
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    node_share[i] = c.weights_by_memory() && i < report.nodes.size() ? report.nodes[i].share : c.weight_share(i);
    if (c.weights_by_memory()) node_share[i] = std::max(1.0, std::round(100 * node_share[i]));
  }
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    s.first_rank.push_back(s.total_ranks);
    for (int r = 0; r < c.nodes[i].ranks; ++r) s.weights.push_back(node_share[i] / c.nodes[i].ranks);
    s.total_ranks += c.nodes[i].ranks;
  }
  // Normalise to the smallest share = 1 (readable, and the same weights always print the same).
  const double smallest = *std::min_element(s.weights.begin(), s.weights.end());
  bool even = true;
  for (double& w : s.weights) {
    w = std::round(w / smallest * 1000) / 1000;
    even = even && w == 1.0;
  }
  s.text = model::format_split(s.weights);
  if (even) s.weights.clear();
  return s;
}

}  // namespace clusterctl::placement
