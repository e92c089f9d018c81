#pragma once
// How a model is cut over N ranks, from its hyperparameters and the types of the tensors whose
// columns are cut: attention by whole KV-head groups (their query heads with them), or, when
// ranks outnumber KV-head groups, by query heads with the KV heads replicated; FFN and
// vocabulary by ranges; every boundary on the quantisation block of the tensor it cuts.
// Uneven splits (`--split 2,1,1`) are honoured as closely as those units allow; a split that
// cannot be made is refused with the reason and the nearest one that can.
#include <string>
#include <vector>

#include "worker/gguf/gguf_file.h"
#include "worker/model/hparams.h"
#include "worker/model/partition.h"

namespace clusterctl::model {

// The smallest pieces a split may move between ranks.
struct SplitUnits {
  int64_t kv_group_heads = 1;  // query heads sharing one KV head (n_head / n_head_kv)
  int64_t head_align = 1;      // query heads whose attn_output columns fill whole quant blocks
  int64_t ffn = 1;             // FFN columns per quant block of ffn_down (its columns are cut)
  int64_t vocab = 1;           // LM head rows: whole groups of kernels::kPackRows where the vocabulary allows

  // From the tensor types of every layer.
  static SplitUnits from_model(const gguf::GgufFile& f, const HParams& hp);
};

// The rank counts the product is built and tested for (a cluster of two to eight machines).
constexpr int kMaxRanks = 8;

// The column grid on which the two row-parallel matrices sum their dot products
// (kernels::matmul_row_parallel): every cut plan_shards can make in their columns, for any split
// over up to kMaxRanks ranks, is a multiple of these, so every such split computes the same
// chunk sums as one rank and the all-reduced result is one rank's, bit for bit.
struct ReductionGrid {
  int64_t attn_output = 1;  // columns of attn_output (query heads x head_dim)
  int64_t ffn_down = 1;     // columns of ffn_down (the FFN dimension)
};
ReductionGrid reduction_grid(const HParams& hp, const SplitUnits& units);

// "2,1,1" -> {2, 1, 1}. Throws clusterctl::Error for anything but positive numbers.
std::vector<double> parse_split(const std::string& text);
std::string format_split(const std::vector<double>& weights);

// The plan for `ranks` ranks in proportion to `weights` (empty: even), attention split by heads
// or replicated on every rank (`layout`). Throws clusterctl::Error when the model cannot be split
// so (too many ranks for its heads or FFN, or a weight too small to get one unit), naming the
// reason and the nearest valid split or rank count.
ShardPlan plan_shards(const HParams& hp, const SplitUnits& units, int ranks, const std::vector<double>& weights = {},
                      Layout layout = Layout::split_attention);

// The largest number of ranks the model's heads (unless attention is replicated) and FFN allow.
int max_ranks(const HParams& hp, const SplitUnits& units, Layout layout = Layout::split_attention);

// One line per rank for logs: "rank 0: heads [0,16) kv [0,4) ffn [0,4096) vocab [0,64128)".
std::string describe_plan(const ShardPlan& plan, const HParams& hp);

}  // namespace clusterctl::model
