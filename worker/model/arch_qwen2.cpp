// Qwen2 / Qwen2.5: NeoX-style RoPE (halves) and biases on the Q, K and V projections.
#include "worker/model/architecture.h"

namespace clusterctl::model {
ArchSpec qwen2_arch() { return {"qwen2", RopeLayout::NeoxHalves, true, false}; }
}  // namespace clusterctl::model
