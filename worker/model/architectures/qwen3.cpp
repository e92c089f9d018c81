// Qwen3 (dense): NeoX-style RoPE, no biases, RMSNorm of every Q and K head (shared weights of
// head_dim) before RoPE.
#include "worker/model/architecture.h"
#include "worker/model/forward.h"

namespace clusterctl::model {
namespace {

std::vector<TensorSpec> tensors(const HParams& hp) {
  TensorList t(hp);
  t.token_embedding();
  for (int l = 0; l < static_cast<int>(hp.n_layer); ++l) {
    t.attention(l, {.qk_norm = true});
    t.feed_forward(l);
  }
  t.output();
  return t.take();
}

void layer(ForwardPass& f, int64_t l) {
  f.self_attention(l);
  f.feed_forward(l);
}

}  // namespace

const Architecture& qwen3_architecture() {
  static const Architecture a{.name = "qwen3", .rope = RopeLayout::NeoxHalves, .tensors = tensors, .layer = layer};
  return a;
}

}  // namespace clusterctl::model
