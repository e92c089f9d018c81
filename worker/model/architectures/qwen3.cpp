// Qwen3 (dense): NeoX-style RoPE, no biases, RMSNorm of every Q and K head (shared weights of
// head_dim) before RoPE.
#include "worker/model/architecture.h"
#include "worker/model/forward.h"

namespace clusterctl::model {

const Architecture& qwen3_architecture() {
  static const Architecture a{.name = "qwen3",
                              .rope = RopeLayout::NeoxHalves,
                              .tensors = [](const HParams& hp) { return decoder_tensors(hp, {.qk_norm = true}); },
                              .layer = decoder_layer};
  return a;
}

}  // namespace clusterctl::model
