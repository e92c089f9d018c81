// Qwen3 (dense): NeoX-style RoPE, no biases, RMSNorm of every Q and K head (shared weights
// of head_dim) before RoPE.
#include "worker/model/architecture.h"

namespace clusterctl::model {
ArchSpec qwen3_arch() { return {"qwen3", RopeLayout::NeoxHalves, false, true}; }
}  // namespace clusterctl::model
