// Llama 1/2/3.x, TinyLlama, SmolLM, Mistral, and Mixtral (its experts under the same name): the
// GGUF converter permutes Q/K rows so RoPE rotates adjacent pairs; no biases.
#include "worker/model/architecture.h"
#include "worker/model/forward.h"

namespace clusterctl::model {

const Architecture& llama_architecture() {
  static const Architecture a{.name = "llama",
                              .rope = RopeLayout::Adjacent,
                              .tensors = [](const HParams& hp) { return decoder_tensors(hp, {}); },
                              .layer = decoder_layer};
  return a;
}

}  // namespace clusterctl::model
