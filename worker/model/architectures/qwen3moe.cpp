// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B): Qwen3's attention (NeoX RoPE, RMSNorm of every Q
// and K head), and in every layer a mixture of experts in place of the dense FFN: the router's
// softmax picks expert_used_count experts per token, their probabilities rescaled to sum to 1.
// The experts' width is expert_feed_forward_length, apart from the dense feed_forward_length.
#include "worker/model/architecture.h"
#include "worker/model/forward.h"

namespace clusterctl::model {

const Architecture& qwen3moe_architecture() {
  static const Architecture a{.name = "qwen3moe",
                              .rope = RopeLayout::NeoxHalves,
                              .experts_required = true,
                              .tensors = [](const HParams& hp) { return decoder_tensors(hp, {.qk_norm = true}); },
                              .layer = decoder_layer};
  return a;
}

}  // namespace clusterctl::model
