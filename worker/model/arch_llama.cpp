// Llama 1/2/3.x, TinyLlama, SmolLM, Mistral, and Mixtral (its experts under the same name): the
// GGUF converter permutes Q/K rows so RoPE rotates adjacent pairs; no biases.
#include "worker/model/architecture.h"

namespace clusterctl::model {
ArchSpec llama_arch() { return {"llama", RopeLayout::Adjacent, false, false}; }
}  // namespace clusterctl::model
