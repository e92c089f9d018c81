#pragma once
// The nodes of a cluster file: each node's fields over those under `defaults:`, and its link.
#include <optional>
#include <string>
#include <string_view>

#include "controller/config/cluster_config.h"
#include "controller/config/yaml_fields.h"

namespace clusterctl::config::detail {

inline constexpr std::string_view kSettingKeys[] = {"port",   "user", "identity",  "ranks",  "threads",
                                                    "weight", "link", "cache_dir", "worker", "memory"};

// Node fields that may be written on the node or once under `defaults:`.
struct NodeSettings {
  std::optional<int> port, ranks, threads;
  std::optional<std::string> user, identity, cache_dir, worker;
  std::optional<bool> by_memory;
  std::optional<double> weight;
  std::optional<LinkConfig> link;
  std::optional<uint64_t> memory;
  bool link_given = false;  // written, even if wrong (then already reported)
  SourcePos weight_pos;
};

class NodesReader : public FieldReader {
 public:
  using FieldReader::FieldReader;

 protected:
  // A node's settings (or those under `defaults:`); `where` names it in messages.
  NodeSettings parse_settings(const YAML::Node& m, const std::string& where);
  // `nodes:`, each node's settings over the defaults `d`, into c.nodes.
  void parse_nodes(const YAML::Node& root, const NodeSettings& d, ClusterConfig& c);

 private:
  std::optional<LinkConfig> parse_link(const YAML::Node& l, const std::string& where);
};

}  // namespace clusterctl::config::detail
