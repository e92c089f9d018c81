#pragma once
// What distinguishes one supported general.architecture from another. Each architecture is one
// file (architectures/<name>.cpp) holding its hyperparameter keys, its tensors and its layer
// function, built from shared pieces (TensorList; ForwardPass's attention and feed-forward
// blocks), and a line in the registry (architectures/list.h); nothing else names it.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "worker/gguf/gguf_file.h"
#include "worker/model/hparams.h"
#include "worker/model/tensor_table.h"

namespace clusterctl::model {

class ForwardPass;
struct ModelWeights;

enum class RopeLayout {
  Adjacent,   // rotate pairs (x[2i], x[2i+1]): llama.cpp's "normal" rope (Llama)
  NeoxHalves  // rotate pairs (x[i], x[i + d/2]): llama.cpp's "neox" rope (Qwen)
};

struct Architecture {
  std::string_view name;
  RopeLayout rope = RopeLayout::Adjacent;
  // Mixture of experts: `experts_required`, the architecture has no dense FFN; the chosen
  // experts' router probabilities rescaled to sum to 1 or not.
  bool experts_required = false;
  bool normalize_expert_weights = true;
  // Keys of its own beyond the common ones HParams::from_gguf reads (null: none).
  void (*read_hparams)(const gguf::GgufFile& f, HParams& hp) = nullptr;
  // Every tensor of a model of this shape, in the order converters write them.
  std::vector<TensorSpec> (*tensors)(const HParams& hp) = nullptr;
  // One layer of the forward pass on the batch ForwardPass holds.
  void (*layer)(ForwardPass& pass, int64_t layer) = nullptr;
  // Weights the layer computes with that the file stores in another form, made from the loaded
  // ones before they are packed for the kernels (null: none).
  void (*derive_weights)(const HParams& hp, const Partition& part, ModelWeights& w) = nullptr;
};

#define CLUSTERCTL_ARCHITECTURE(name) const Architecture& name##_architecture();
#include "worker/model/architectures/list.h"
#undef CLUSTERCTL_ARCHITECTURE

// The architecture of a GGUF general.architecture, or null.
const Architecture* lookup_architecture(std::string_view arch);
// The architecture of a GGUF general.architecture; throws clusterctl::Error naming an unsupported one.
const Architecture& find_architecture(const std::string& arch, const std::string& file);

}  // namespace clusterctl::model
