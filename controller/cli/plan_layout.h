#pragma once
// The layout part of `plan` (issue #17): attention split over the ranks (two all-reduces per
// layer) or replicated on every rank (one all-reduce per layer, the whole attention weights read
// and the whole KV cache kept on every node), each predicted with the throughput model, and which
// one `up` runs and why.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "controller/cli/plan_speed.h"
#include "controller/config/cluster_config.h"
#include "worker/model/partition.h"

namespace clusterctl::cli {

struct LayoutOption {
  model::Layout layout = model::Layout::split_attention;
  int allreduces_per_token = 0;
  std::optional<placement::Prediction> best;  // its fastest all-reduce and format; none without speeds
  double node_bytes_per_token = 0;            // weight bytes the busiest node reads per token
  uint64_t node_kv_bytes = 0;                 // the largest node's KV cache
  bool fits = true;                           // every node has the memory for it
};

struct LayoutChoice {
  std::vector<LayoutOption> options;                           // split, then replicated (one entry on one rank)
  std::string configured;                                      // the cluster file's `layout:` ("" when absent)
  model::Layout runs = model::Layout::split_attention;         // what `up` runs
  model::Layout recommended = model::Layout::split_attention;  // the faster one that fits
  std::string reason;                                          // why `recommended`, in numbers
};

// `options`: split first, then replicated. `missing`: why speeds are not predicted ("" when they are).
LayoutChoice choose_layout(std::vector<LayoutOption> options, const std::string& configured,
                           const std::string& missing);
// `cluster_file`: where `layout:` goes; empty for --what-if (no cluster file, nothing runs).
void print_layout_text(const LayoutChoice& c, const std::string& cluster_file);
nlohmann::json layout_json(const LayoutChoice& c);

// `layout: auto`, for `up` and for the supervisor's restart (over the nodes that remain): sets
// `config.layout` to the layout plan recommends for `config` (offline: doctor's recorded node
// speeds, the cluster file's link; split-attention when it cannot be predicted) and prints
// "layout: auto -> LAYOUT: why" to `out`. Any other layout is left as it is.
void resolve_auto_layout(config::ClusterConfig& config, std::FILE* out);

}  // namespace clusterctl::cli
