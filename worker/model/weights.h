#pragma once
// One rank's weights: matrices point into the GGUF file's memory map (no copy), except the
// row-parallel slices (columns of attn_output and ffn_down), which are copied out once at
// load because a column slice of a row-major tensor is not contiguous, and the Q4_0 and Q8_0 matrices
// the kernels read faster packed (kernels.h Layout::Packed8), slices included, which are packed
// from the map once at load into memory of their own while the map's pages are let go.
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

namespace clusterctl::model {

// Bytes this rank owns (a copied column slice); the Matrix that uses it points here.

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> q_norm, k_norm;          // qk_norm architectures: head_dim each
  std::vector<float> q_bias, k_bias, v_bias;  // qkv_bias architectures: this rank's rows
  kernels::Matrix wq, wk, wv;                 // rows of this rank's query / KV heads
  kernels::Matrix wo;                         // columns of this rank's query heads
  kernels::Matrix w_gate, w_up;               // rows of this rank's FFN slice
  kernels::Matrix w_down;                     // columns of this rank's FFN slice
  LargeBuffer wo_bytes, w_down_bytes;          // set when wo / w_down are copied slices
  // A mixture of experts in place of w_gate/w_up/w_down (HParams::n_expert > 0): every rank holds
  // the whole router, in float, so all ranks pick the same experts for a token, and each expert's
  // gate/up rows and down columns of this rank's FFN slice, cut as the dense matrices are.
  std::vector<float> router;                  // n_expert rows of n_embd
  std::vector<kernels::Matrix> exp_gate, exp_up, exp_down;  // one per expert
  std::vector<LargeBuffer> exp_down_bytes;    // set where an expert's down columns are copied
};

struct ModelWeights {
  const gguf::TensorInfo* token_embd = nullptr;  // all rows (each rank embeds every token)
  const uint8_t* token_embd_data = nullptr;
  std::vector<float> output_norm;
  kernels::Matrix lm_head;                 // rows of this rank's vocabulary slice
  std::vector<float> rope_freq_factors;    // rope_freqs.weight, empty when absent
  std::vector<LayerWeights> layers;
  uint64_t bytes_per_token = 0;            // weight bytes one decode step reads on this rank
  LargeBuffer packed;                      // the packed matrices' bytes

  // Throws clusterctl::Error naming a missing tensor, an unsupported type or a shape mismatch.
  static ModelWeights load(const gguf::GgufFile& f, const HParams& hp, const ArchSpec& arch, const Partition& part);
};

}  // namespace clusterctl::model
