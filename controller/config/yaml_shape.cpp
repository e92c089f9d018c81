#include "controller/config/yaml_shape.h"

#include <algorithm>
#include <vector>

namespace clusterctl::config::detail {

// The deepest a cluster file nests (its real depth is 4: nodes, a node, link, a key). yaml-cpp
// recurses once per level, so a file nesting thousands deep would exhaust the stack: refused
// before it is parsed, by the deepest of the flow brackets ([ {) and of the block structure (a
// line's indentation plus the "- " and "? " that open a level on it).
std::optional<std::pair<int, int>> too_deep(const std::string& text) {
  int line = 1, flow = 0;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = std::min(text.find('\n', at), text.size());
    int depth = 0;
    size_t i = at;
    while (i < end && text[i] == ' ') ++i, ++depth;
    while (i + 1 < end && (text[i] == '-' || text[i] == '?') && text[i + 1] == ' ') {
      depth += 2, i += 2;
      while (i < end && text[i] == ' ') ++i;
    }
    char quote = 0;
    for (size_t k = i; k < end; ++k) {
      const char c = text[k];
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '#') {
        break;
      } else if (c == '[' || c == '{') {
        if (++flow > kMaxDepth) return std::pair{line, static_cast<int>(k - at + 1)};
      } else if (c == ']' || c == '}') {
        flow = std::max(0, flow - 1);
      }
    }
    if (depth / 2 > kMaxDepth) return std::pair{line, 1};
    at = end + 1, ++line;
  }
  return std::nullopt;
}

// YAML merge keys (<<: *defaults, or a list of them), which yaml-cpp reads as a key named "<<":
// the merged mappings' keys the mapping does not have itself are copied in, in order.
void apply_merge_keys(YAML::Node node, int depth) {
  if (depth > kMaxDepth) return;
  if (node.IsSequence()) {
    for (YAML::Node item : node) apply_merge_keys(item, depth + 1);
    return;
  }
  if (!node.IsMap()) return;
  if (YAML::Node merge = node["<<"]) {
    std::vector<YAML::Node> sources;
    if (merge.IsMap()) sources.push_back(merge);
    if (merge.IsSequence())
      for (YAML::Node m : merge)
        if (m.IsMap()) sources.push_back(m);
    if (!sources.empty()) {
      node.remove("<<");
      for (const YAML::Node& source : sources)
        for (auto it = source.begin(); it != source.end(); ++it)
          if (it->first.IsScalar() && !node[it->first.Scalar()]) node[it->first.Scalar()] = it->second;
    }
  }
  for (auto it = node.begin(); it != node.end(); ++it) apply_merge_keys(it->second, depth + 1);
}

}  // namespace clusterctl::config::detail
