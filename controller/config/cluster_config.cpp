#include "controller/config/cluster_config.h"

#include <cstdlib>
#include <numeric>

namespace clusterctl::config {

std::string_view link_type_name(LinkType t) { return t == LinkType::thunderbolt ? "thunderbolt" : "ethernet"; }

std::string LinkConfig::describe() const {
  return std::string(link_type_name(type)) + " " + (cidr ? cidr->to_string() : interface);
}

bool NodeConfig::is_local() const { return host == "localhost" || host == "127.0.0.1"; }

std::string NodeConfig::ssh_address() const { return user + "@" + host + ":" + std::to_string(port); }

int ClusterConfig::total_ranks() const {
  return std::accumulate(nodes.begin(), nodes.end(), 0, [](int s, const NodeConfig& n) { return s + n.ranks; });
}

bool ClusterConfig::weights_by_memory() const { return !nodes.empty() && nodes.front().weight_by_memory; }

double ClusterConfig::weight_share(size_t node_index) const {
  double total = 0;
  for (const auto& n : nodes) total += n.weight;
  return total > 0 ? nodes.at(node_index).weight / total : 0;
}

std::vector<Diagnostic> check_against_model(const ClusterConfig& config, int n_head, int n_ctx_train) {
  std::vector<Diagnostic> out;
  int ranks = config.total_ranks();
  if (n_head > 0 && ranks > n_head)
    out.push_back({config.nodes_pos,
                   "impossible split: " + std::to_string(ranks) + " ranks in total but the model has only " +
                       std::to_string(n_head) + " attention heads to divide among them",
                   "lower `ranks` so that the nodes' ranks add up to at most " + std::to_string(n_head)});
  if (n_ctx_train > 0 && config.context > n_ctx_train)
    out.push_back({{},
                   "context " + std::to_string(config.context) + " is longer than the model's " +
                       std::to_string(n_ctx_train) + " tokens",
                   "set `context` to at most " + std::to_string(n_ctx_train)});
  return out;
}

std::string expand_home(const std::string& path) {
  if (path == "~" || path.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    return std::string(home ? home : "") + path.substr(1);
  }
  return path;
}

}  // namespace clusterctl::config
