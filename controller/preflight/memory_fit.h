#pragma once
// When the memory check failed: one message for `up`, with each short node's need against what
// it has, and the fix that applies. A model bigger than all the nodes' memory together needs more
// nodes, bigger ones or a smaller quant; one that fits the cluster but not this split needs other
// weights.
#include <optional>
#include <string>

#include "controller/config/cluster_config.h"
#include "controller/preflight/preflight.h"

namespace clusterctl::preflight {

struct MemoryShortfall {
  std::string node;  // the one short node, or "controller" when several are short
  std::string cause;
  std::string fix;
};

// None when every node that was measured has the memory for its share.
std::optional<MemoryShortfall> memory_shortfall(const config::ClusterConfig& config, const PreflightReport& report);

}  // namespace clusterctl::preflight
