// Qwen2 / Qwen2.5: NeoX-style RoPE (halves) and biases on the Q, K and V projections.
#include "worker/model/architecture.h"
#include "worker/model/forward.h"

namespace clusterctl::model {

const Architecture& qwen2_architecture() {
  static const Architecture a{.name = "qwen2",
                              .rope = RopeLayout::NeoxHalves,
                              .tensors = [](const HParams& hp) { return decoder_tensors(hp, {.qkv_bias = true}); },
                              .layer = decoder_layer};
  return a;
}

}  // namespace clusterctl::model
