#pragma once
// The cluster at a glance: GET /v1/cluster's JSON (the web page's dashboard) and the per-rank
// lines of GET /metrics, from the service's nodes and what its ranks measured (ClusterLoad).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "worker/server/generation_service.h"

namespace clusterctl::server {

// The node picture's links: every pair of ranks, "shared memory" on one host, else the ranks'
// cluster link type ("ethernet", "thunderbolt", "tcp" when unknown).
std::string link_between(const ClusterNode& a, const ClusterNode& b);

nlohmann::json cluster_json(const ModelInfo& model, const std::vector<ClusterNode>& nodes, const ServiceStats& stats,
                            const ClusterLoad& load, double tokens_per_second);

// Prometheus text: each rank's totals and per-token figures, labelled rank="R",node="HOST".
std::string cluster_prometheus_text(const std::vector<ClusterNode>& nodes, const ClusterLoad& load);

}  // namespace clusterctl::server
