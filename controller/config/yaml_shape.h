#pragma once
// The shape of a cluster file before its fields are read: bounded nesting, and YAML merge keys.
#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <utility>

namespace clusterctl::config::detail {

// The deepest a cluster file nests (its real depth is 4: nodes, a node, link, a key).
constexpr int kMaxDepth = 64;

// yaml-cpp recurses once per level, so a file nesting thousands deep would exhaust the stack:
// the (line, column) where the text passes kMaxDepth, checked before it is parsed.
std::optional<std::pair<int, int>> too_deep(const std::string& text);

// YAML merge keys (<<: *defaults, or a list of them), which yaml-cpp reads as a key named "<<":
// the merged mappings' keys the mapping does not have itself are copied in, in order.
void apply_merge_keys(YAML::Node node, int depth = 0);

}  // namespace clusterctl::config::detail
