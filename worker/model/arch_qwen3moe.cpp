// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B): Qwen3's attention (NeoX RoPE, RMSNorm of every Q
// and K head), and in every layer a mixture of experts in place of the dense FFN: the router's
// softmax picks expert_used_count experts per token, their probabilities rescaled to sum to 1.
#include "worker/model/architecture.h"

namespace clusterctl::model {
ArchSpec qwen3moe_arch() {
  ArchSpec s{"qwen3moe", RopeLayout::NeoxHalves, false, true};
  s.experts_required = true;
  return s;
}
}  // namespace clusterctl::model
