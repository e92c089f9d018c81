#pragma once
// The one table of tensor names (as llama.cpp's llama-arch.cpp), and the description of a
// model's tensors an architecture gives (architecture.h): each tensor's name, shape and how it is
// split over ranks. The weight loader, the shard cutter (and through it `plan`) and `model synth`
// all read this description, so a new architecture states its tensors once.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "worker/model/hparams.h"
#include "worker/model/partition.h"

namespace clusterctl::model {

enum class TensorKind : uint8_t {
  // Whole-model tensors.
  TokenEmbd,
  RopeFreqs,
  OutputNorm,
  Output,
  // Per layer: attention.
  AttnNorm,
  AttnQ,
  AttnK,
  AttnV,
  AttnQBias,
  AttnKBias,
  AttnVBias,
  AttnQNorm,
  AttnKNorm,
  AttnOutput,
  // Per layer: multi-head latent attention (deepseek2): the query's low-rank pair and its norm,
  // the latent and RoPE key from one projection, the latent's norm, and the latent's expansion
  // to keys and values, fused (kv_b) or split per head (k_b, v_b).
  AttnQA,
  AttnQANorm,
  AttnQB,
  AttnKvAMqa,
  AttnKvANorm,
  AttnKvB,
  AttnKB,
  AttnVB,
  // Per layer: feed-forward, dense or a mixture of experts.
  FfnNorm,
  FfnGate,
  FfnUp,
  FfnDown,
  FfnRouter,
  FfnGateExps,
  FfnUpExps,
  FfnDownExps,
  FfnExpProbsB,  // the router's score-correction bias (DeepSeek-V3)
  FfnGateShexp,  // the shared experts, beside the routed ones
  FfnUpShexp,
  FfnDownShexp,
  Count
};
constexpr size_t kTensorKinds = static_cast<size_t>(TensorKind::Count);

// "blk.3.attn_q.weight" for (AttnQ, 3); "token_embd.weight" for (TokenEmbd, -1).
std::string tensor_name(TensorKind kind, int layer = -1);

// How a tensor is cut over ranks (Partition). Rows are ggml's dimension 1 (of a 1-D tensor: its
// elements), columns dimension 0; `unit` rows or columns per head for the head splits.
enum class Split : uint8_t {
  Replicated,        // every rank holds all of it
  QHeadRows,         // the rank's query heads (column-parallel)
  KvHeadRows,        // the KV heads its query heads read
  QHeadColumns,      // its query heads' columns (row-parallel: partial sums, all-reduced)
  FfnRows,           // its FFN slice
  FfnColumns,        // its FFN slice's columns (row-parallel)
  VocabRows,         // its vocabulary slice (the LM head)
  ExpertFfnRows,     // [cols x ffn x experts]: its experts, of each its FFN rows
  ExpertFfnColumns,  // [ffn x cols x experts]: its experts, of each its FFN columns (row-parallel)
  HeadSlices,        // [cols x rows x heads]: its query heads' matrices (attn_k_b, attn_v_b)
  DenseFfnRows,      // its slice of the leading dense layers' FFN (Partition::dense_ffn)
  DenseFfnColumns,
  SharedFfnRows,  // its slice of the shared experts' FFN (Partition::shared_ffn)
  SharedFfnColumns,
};

struct TensorSpec {
  TensorKind kind;
  int layer = -1;               // -1: a whole-model tensor
  std::vector<uint64_t> shape;  // ggml order; the whole model's
  Split split = Split::Replicated;
  uint64_t unit = 1;       // rows (columns) per head of the head splits
  bool optional = false;   // absent in some files: output.weight (tied), rope_freqs.weight
  bool as_floats = false;  // the engine reads it dequantised (1-D tensors, the router)

  std::string name() const { return tensor_name(kind, layer); }
  bool row_parallel() const {
    return split == Split::QHeadColumns || split == Split::FfnColumns || split == Split::ExpertFfnColumns ||
           split == Split::DenseFfnColumns || split == Split::SharedFfnColumns;
  }
};

// The part of a tensor one Partition holds, per dimension, in elements.
struct TensorSlice {
  std::vector<Range> dims;
  std::vector<uint64_t> shape() const;
  // The dimension cut short of `whole` (0 or 1; -1: none of the first two).
  int cut_dim(const std::vector<uint64_t>& whole) const;
};
TensorSlice slice_of(const TensorSpec& spec, const Partition& part, const HParams& hp);

// The shared pieces architectures list their tensors with, in llama.cpp's file order.
class TensorList {
 public:
  explicit TensorList(const HParams& hp) : hp_(hp) {}

  void add(TensorKind kind, int layer, std::vector<uint64_t> shape, Split split, uint64_t unit = 1);
  void mark_optional() { out_.back().optional = true; }
  void mark_floats() { out_.back().as_floats = true; }

  void token_embedding();  // token_embd, and rope_freqs (Llama 3's, optional)
  struct AttentionOptions {
    bool qkv_bias = false;  // attn_{q,k,v}.bias (Qwen2)
    bool qk_norm = false;   // attn_{q,k}_norm, head_dim each (Qwen3)
  };
  void attention(int layer, AttentionOptions o);  // attn_norm, Q, K, V, [biases], [norms], output
  void feed_forward(int layer);                   // ffn_norm, and a dense SwiGLU or the experts
  void output();                                  // output_norm, output (optional: tied)

  std::vector<TensorSpec> take() { return std::move(out_); }

 private:
  const HParams& hp_;
  std::vector<TensorSpec> out_;
};

// The tensors of the common decoder: the token embedding, every layer's attention then
// feed-forward (dense, or experts where the model has them), the output.
std::vector<TensorSpec> decoder_tensors(const HParams& hp, TensorList::AttentionOptions attention);

}  // namespace clusterctl::model
