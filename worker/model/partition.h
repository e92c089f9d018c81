#pragma once
// Which part of the model one rank computes. The forward pass is written once against a
// Partition; world size 1 is the Partition that holds everything.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "worker/model/hparams.h"

namespace clusterctl::model {

// A half-open range [begin, end).
struct Range {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
  bool operator==(const Range&) const = default;
};

// Where attention runs. split-attention: each rank its query heads and their KV heads, so a layer
// all-reduces twice (after attn_output, after the FFN). replicated-attention: every rank all heads
// with the whole attention weights and KV cache, so a layer all-reduces once (after the FFN) at the
// cost of reading the attention weights whole on every node; the sum is one rank's either way.
enum class Layout { split_attention, replicated_attention };
const char* layout_name(Layout l);  // "split-attention", "replicated-attention"
// "split-attention" | "replicated-attention" -> the layout; nullopt for anything else.
std::optional<Layout> parse_layout(const std::string& text);

// One rank's slice. Query heads are the unit of the attention split: the rank computes the
// KV heads its query heads read (kv_heads()), so when ranks outnumber KV heads a KV head is
// computed (replicated) on every rank whose query heads share it.
struct Partition {
  Range q_heads;  // query heads: rows [begin*head_dim, end*head_dim) of attn_q
  Range ffn;      // rows of ffn_gate/ffn_up, columns of ffn_down (of every expert this rank holds)
  Range vocab;    // rows of the LM head
  // A mixture of experts' experts this rank holds: all of them, each cut to `ffn`, or, when the
  // ranks outnumber the experts' FFN units, whole experts (`ffn` then all columns); empty when dense.
  Range experts;
  // deepseek2's FFNs of other widths, cut like `ffn` (empty when the model has none): the
  // leading dense layers' (n_ff_dense) and the shared experts' (n_ff x n_expert_shared).
  Range dense_ffn;
  Range shared_ffn;
  // Layout::replicated_attention: q_heads is every head on every rank and the attention output is
  // added without an all-reduce.
  bool replicated_attention = false;

  Range kv_heads(const HParams& hp) const;  // KV heads the query heads use
  bool holds_expert(int64_t e) const { return e >= experts.begin && e < experts.end; }
  static Partition whole(const HParams& hp);
  std::string describe() const;
};

// Every rank's Partition (all ranks know all of them: the logit gather needs the vocab slices).
struct ShardPlan {
  std::vector<Partition> parts;

  static ShardPlan single(const HParams& hp);
  // Splits heads, FFN and vocabulary into `n` contiguous parts in proportion to `weights`
  // (empty = even), heads in whole KV-head groups when n <= n_head_kv, FFN and vocabulary
  // boundaries rounded to multiples of `ffn_align` / `vocab_align` (the quantisation block
  // of the tensors whose columns are cut). Throws clusterctl::Error when it cannot be made.
  static ShardPlan split(const HParams& hp, int n, const std::vector<double>& weights = {}, int64_t ffn_align = 1,
                         int64_t vocab_align = 1);

  Layout layout() const {
    return !parts.empty() && parts[0].replicated_attention ? Layout::replicated_attention : Layout::split_attention;
  }
  // Throws clusterctl::Error unless the parts cover heads (each all of them when attention is
  // replicated), FFN (or the experts) and vocabulary
  // exactly once, in order.
  void validate(const HParams& hp) const;
  int64_t max_vocab_slice() const;
};

}  // namespace clusterctl::model
