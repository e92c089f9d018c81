// Llama 1/2/3.x, TinyLlama, SmolLM, Mistral, and Mixtral (its experts under the same name): the
// GGUF converter permutes Q/K rows so RoPE rotates adjacent pairs; no biases.
#include "worker/model/architecture.h"
#include "worker/model/forward.h"

namespace clusterctl::model {
namespace {

std::vector<TensorSpec> tensors(const HParams& hp) {
  TensorList t(hp);
  t.token_embedding();
  for (int l = 0; l < static_cast<int>(hp.n_layer); ++l) {
    t.attention(l, {});
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

const Architecture& llama_architecture() {
  static const Architecture a{.name = "llama", .rope = RopeLayout::Adjacent, .tensors = tensors, .layer = layer};
  return a;
}

}  // namespace clusterctl::model
