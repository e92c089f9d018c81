#pragma once
// One rank's weights, loaded from its architecture's tensor table (tensor_table.h): matrices
// point into the GGUF file's memory map (no copy), except the row-parallel slices (columns of
// attn_output and ffn_down), which are copied out once at load because a column slice of a
// row-major tensor is not contiguous, and the matrices the kernels read faster packed
// (kernels.h Layout::Packed8), slices included, which are packed from the map once at load into
// memory of their own while the map's pages are let go.
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "worker/common/large_buffer.h"
#include "worker/gguf/gguf_file.h"
#include "worker/kernels/blocks.h"  // kernels.h uses fp16_t without including it
#include "worker/kernels/kernels.h"
#include "worker/model/architecture.h"
#include "worker/model/hparams.h"
#include "worker/model/partition.h"
#include "worker/model/tensor_table.h"

namespace clusterctl::model {

// One tensor as this rank holds it.
struct Weight {
  bool present = false;
  kernels::Matrix matrix;     // a 2-D tensor's slice
  std::vector<float> values;  // a TensorSpec::as_floats tensor (norms, biases, the router)
  // A 3-D expert tensor: one matrix per expert, indexed by expert; the experts this rank does not
  // hold stay empty (data null).
  std::vector<kernels::Matrix> experts;
  LargeBuffer owned;  // set when `matrix` is a copied column slice
  std::vector<LargeBuffer> experts_owned;
};

struct LayerWeights {
  std::array<Weight, kTensorKinds> tensors;
  const Weight& operator[](TensorKind k) const { return tensors[static_cast<size_t>(k)]; }
  Weight& operator[](TensorKind k) { return tensors[static_cast<size_t>(k)]; }
  bool has(TensorKind k) const { return (*this)[k].present; }
  const kernels::Matrix& matrix(TensorKind k) const { return (*this)[k].matrix; }
  const float* floats(TensorKind k) const { return (*this)[k].values.data(); }
  const kernels::Matrix& expert(TensorKind k, int64_t e) const { return (*this)[k].experts[e]; }
};

struct ModelWeights {
  kernels::Matrix token_embd;  // all rows (each rank embeds every token), in the map
  std::vector<float> output_norm;
  kernels::Matrix lm_head;               // rows of this rank's vocabulary slice
  std::vector<float> rope_freq_factors;  // rope_freqs.weight, empty when absent
  std::vector<LayerWeights> layers;
  uint64_t bytes_per_token = 0;  // weight bytes one decode step reads on this rank
  LargeBuffer packed;            // the packed matrices' bytes

  // Throws clusterctl::Error naming a missing tensor, an unsupported type or a shape mismatch.
  static ModelWeights load(const gguf::GgufFile& f, const HParams& hp, const Architecture& arch, const Partition& part);
};

}  // namespace clusterctl::model
