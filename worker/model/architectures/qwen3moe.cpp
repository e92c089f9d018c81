// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B): Qwen3's attention (NeoX RoPE, RMSNorm of every Q
// and K head), and in every layer a mixture of experts in place of the dense FFN: the router's
// softmax picks expert_used_count experts per token, their probabilities rescaled to sum to 1.
// The experts' width is expert_feed_forward_length, apart from the dense feed_forward_length.
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

const Architecture& qwen3moe_architecture() {
  static const Architecture a{.name = "qwen3moe",
                              .rope = RopeLayout::NeoxHalves,
                              .experts_required = true,
                              .normalize_expert_weights = true,
                              .tensors = tensors,
                              .layer = layer};
  return a;
}

}  // namespace clusterctl::model
