#include "controller/preflight/memory_fit.h"

#include <cmath>
#include <cstdio>

#include "worker/common/human_bytes.h"

namespace clusterctl::preflight {

std::optional<MemoryShortfall> memory_shortfall(const config::ClusterConfig& c, const PreflightReport& r) {
  std::string short_nodes, short_node;
  uint64_t need = 0, have = 0, kv = 0;
  size_t measured = 0, short_count = 0;
  for (size_t i = 0; i < r.nodes.size() && i < c.nodes.size(); ++i) {
    const NodeFacts& f = r.nodes[i];
    if (!f.mem_usable || !f.need_bytes) continue;
    ++measured;
    need += f.need_bytes;
    kv += f.kv_bytes;
    have += *f.mem_usable;
    if (f.need_bytes <= *f.mem_usable) continue;
    ++short_count;
    short_node = c.nodes[i].name;
    short_nodes += (short_nodes.empty() ? "" : "; ") + c.nodes[i].name + " needs " + human_bytes(f.need_bytes) +
                   " (shard " + human_bytes(f.shard_bytes) + " + KV cache " + human_bytes(f.kv_bytes) + ") and has " +
                   human_bytes(*f.mem_usable) + (c.nodes[i].memory_limit ? " (its 'memory:' limit)" : " free");
  }
  if (!short_count) return std::nullopt;
  const std::string model = r.model.path.empty() ? std::string("the model") : r.model.path;
  MemoryShortfall s;
  s.node = short_count == 1 ? short_node : std::string("controller");
  s.cause = model + " (" + human_bytes(r.model.tensor_bytes) + " of weights) does not fit in " +
            (short_count == measured ? std::string("any node's") : std::to_string(short_count) + " node(s)'") +
            " memory: " + short_nodes;
  if (need > have) {
    // The whole cluster is too small: as many nodes as these, with their memory, cannot hold it.
    const double per_node = double(have) / double(measured);
    const auto nodes_needed = static_cast<long long>(std::ceil(double(need) / per_node));
    char bits[32] = "";
    if (r.model.parameters)
      std::snprintf(bits, sizeof bits, "%.1f", 8.0 * double(r.model.tensor_bytes) / double(r.model.parameters));
    s.fix = "the " + std::to_string(measured) + " node(s) have " + human_bytes(have) +
            " together and the model needs " + human_bytes(need) + ": add nodes (about " +
            std::to_string(nodes_needed) +
            " like these), use nodes with more memory, or a smaller quant of the model (this file has " +
            (bits[0] ? std::string(bits) : std::string("?")) + " bits per weight; Q2_K has about 2.6)" +
            (kv * 10 >= need ? ", or lower 'context' in " + c.file + " (the KV cache is " + human_bytes(kv) + " of it)"
                             : "");
  } else {
    s.fix = "the nodes have the memory together but not in this split: lower the 'weight' of the short node(s) " +
            std::string("(or give every node 'weight: by memory'), or raise their 'memory:' limit, in ") + c.file;
  }
  return s;
}

}  // namespace clusterctl::preflight
