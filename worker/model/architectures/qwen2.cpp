// Qwen2 / Qwen2.5: NeoX-style RoPE (halves) and biases on the Q, K and V projections.
#include "worker/model/architecture.h"
#include "worker/model/forward.h"

namespace clusterctl::model {
namespace {

std::vector<TensorSpec> tensors(const HParams& hp) {
  TensorList t(hp);
  t.token_embedding();
  for (int l = 0; l < static_cast<int>(hp.n_layer); ++l) {
    t.attention(l, {.qkv_bias = true});
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

const Architecture& qwen2_architecture() {
  static const Architecture a{.name = "qwen2", .rope = RopeLayout::NeoxHalves, .tensors = tensors, .layer = layer};
  return a;
}

}  // namespace clusterctl::model
