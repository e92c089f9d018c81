#pragma once
// The key/value cache of one rank: only its own KV heads. Keys are stored per head as rows of
// head_dim ([slot][head][position][dim]); values transposed ([slot][head][dim][position]) so the
// weighted sum over positions is a dot product along a row, as the kernels compute it.
// With multi-head latent attention (HParams::latent_attention) it holds, per token, one row of the
// normed latent and the RoPE'd key part (kv_lora_rank + rope_dim: 576 values for DeepSeek-V3), the
// same on every rank, as one "head"; the values are the latent, so there are no value rows.
#include <cstdint>
#include <memory>

#include "worker/kernels/blocks.h"  // kernels.h uses fp16_t without including it
#include "worker/kernels/kernels.h"
#include "worker/model/hparams.h"
#include "worker/model/partition.h"

namespace clusterctl::model {

class KvCache {
 public:
  // `type` is F16 (default) or F32; n_slots independent sequences of up to n_ctx positions each.
  KvCache(const HParams& hp, const Partition& part, int64_t n_ctx, int64_t n_slots, gguf::GgmlType type);

  gguf::GgmlType type() const { return type_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_slots() const { return n_slots_; }
  int64_t n_heads() const { return n_heads_; }
  int64_t head_dim() const { return head_dim_; }
  size_t bytes() const { return v_ ? 2 * bytes_each_ : bytes_each_; }
  // The bytes one token's keys and values take, over all layers, on a rank holding `part`, in
  // elements of `elem_bytes` (2: F16): its KV heads' keys and values, or the latent and RoPE key.
  static uint64_t bytes_per_token(const HParams& hp, const Partition& part, size_t elem_bytes = 2);

  // Row of head_dim keys of (layer, slot, local head, position).
  uint8_t* key(int64_t layer, int64_t slot, int64_t head, int64_t pos) {
    return k_.get() + ((((layer * n_slots_ + slot) * n_heads_ + head) * n_ctx_ + pos) * head_dim_) * elem_;
  }
  // Row of n_ctx values of (layer, slot, local head, dimension), indexed by position.
  uint8_t* value_row(int64_t layer, int64_t slot, int64_t head, int64_t dim) {
    return v_.get() + ((((layer * n_slots_ + slot) * n_heads_ + head) * head_dim_ + dim) * n_ctx_) * elem_;
  }
  size_t elem_bytes() const { return elem_; }
  // Stores one float (converted to the cache type) at p.
  void store(uint8_t* p, float v) const;

 private:
  gguf::GgmlType type_;
  int64_t n_ctx_, n_slots_, n_heads_, head_dim_;
  size_t elem_;
  size_t bytes_each_;
  std::unique_ptr<uint8_t[]> k_, v_;
};

}  // namespace clusterctl::model
