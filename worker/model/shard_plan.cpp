#include "worker/model/shard_plan.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>

#include "worker/common/error.h"
#include "worker/kernels/kernels.h"
#include "worker/model/architecture.h"
#include "worker/model/tensor_table.h"

namespace clusterctl::model {
namespace {

int64_t block_of(const gguf::GgufFile& f, const std::string& name) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  return t ? std::max<int64_t>(1, gguf::type_traits(t->type).block_size) : 1;
}

// Cuts `total_units` units into parts proportional to `weights`, each at least one unit.
// Returns the unit counts; `starved` is set when a weight rounds to zero units and was raised.
std::vector<int64_t> apportion(int64_t total_units, const std::vector<double>& weights, bool& starved) {
  const int n = static_cast<int>(weights.size());
  const double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<int64_t> bounds(n + 1, 0);
  double acc = 0;
  for (int i = 0; i < n; ++i) {
    acc += weights[i];
    bounds[i + 1] = i == n - 1 ? total_units : std::llround(total_units * acc / sum);
  }
  std::vector<int64_t> out(n);
  int64_t prev = 0;
  for (int i = 0; i < n; ++i) {
    int64_t b = bounds[i + 1];
    // At least one unit here and one for each later part.
    const int64_t lo = prev + 1, hi = total_units - (n - 1 - i);
    if (i < n - 1 && (b < lo || b > hi)) starved = true;  // this part or a later one would get nothing
    b = std::clamp(b, lo, hi);
    if (i == n - 1) b = total_units;
    out[i] = b - prev;
    prev = b;
  }
  return out;
}

std::vector<Range> to_ranges(const std::vector<int64_t>& units, int64_t unit, int64_t total) {
  std::vector<Range> r;
  int64_t at = 0;
  for (size_t i = 0; i < units.size(); ++i) {
    const int64_t end = i + 1 == units.size() ? total : at + units[i] * unit;
    r.push_back({at, end});
    at = end;
  }
  return r;
}

std::string range_str(const Range& r) { return "[" + std::to_string(r.begin) + "," + std::to_string(r.end) + ")"; }

}  // namespace

SplitUnits SplitUnits::from_model(const gguf::GgufFile& f, const HParams& hp) {
  SplitUnits u;
  u.kv_group_heads = hp.n_head_kv ? hp.n_head / hp.n_head_kv : 1;
  // Mixed quantisations (Q4_K_M keeps some layers in Q6_K) cut on every layer's block.
  // The units are those of the tensors whose columns are cut (the row-parallel ones).
  int64_t wo_block = 1;
  for (const TensorSpec& s : find_architecture(hp.arch, f.path()).tensors(hp)) {
    if (s.split == Split::QHeadColumns) wo_block = std::lcm(wo_block, block_of(f, s.name()));
    if (s.split == Split::FfnColumns || s.split == Split::ExpertFfnColumns || s.split == Split::DenseFfnColumns ||
        s.split == Split::SharedFfnColumns)
      u.ffn = std::lcm(u.ffn, block_of(f, s.name()));
  }
  u.head_align = wo_block / std::gcd<int64_t>(wo_block, hp.head_dim);
  // ffn_down sums in chunks of this unit (reduction_grid): a chunk of one 32-element block would
  // fold into double every block and slow the matmul, so the unit is coarsened to up to 512
  // columns, as far as kMaxRanks ranks still get one each (16 units in llama3-1b's 8192).
  int64_t reduction = 512;
  while (reduction > 1 && static_cast<int64_t>(hp.n_ff) < kMaxRanks * reduction) reduction /= 2;
  u.ffn = std::lcm(u.ffn, reduction);
  // The LM head is cut in whole groups of packed rows where the vocabulary allows: each rank's
  // slice is then packed as the whole matrix is (kernels::should_pack) and sums its rows alike.
  if (hp.n_vocab % kernels::kPackRows == 0) u.vocab = kernels::kPackRows;
  return u;
}

ReductionGrid reduction_grid(const HParams& hp, const SplitUnits& u) {
  // plan_shards cuts heads in whole KV-head groups while the ranks do not outnumber the groups,
  // and in units of head_align past that; the grid is the finer of the two when up to kMaxRanks
  // ranks can reach that. (A model with 8 KV-head groups thus sums attn_output per group, 256
  // columns in llama3-1b, not per head: per 64 columns the fold costs a fifth of a prompt's
  // attn_output time. Past kMaxRanks, splits stay correct but are not bit-identical to one rank.)
  const int64_t group_unit = std::lcm(u.kv_group_heads, u.head_align);
  const int64_t ranks = std::min<int64_t>(kMaxRanks, max_ranks(hp, u));
  const bool replicated_possible = ranks > static_cast<int64_t>(hp.n_head) / group_unit;
  ReductionGrid g;
  g.attn_output = (replicated_possible ? u.head_align : group_unit) * hp.head_dim;
  g.ffn_down = u.ffn;
  return g;
}

std::vector<double> parse_split(const std::string& text) {
  std::vector<double> w;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !(v > 0) || !std::isfinite(v))
      throw Error("--split '" + text + "': '" + item +
                  "' is not a positive number; give one weight per rank, e.g. --split 2,1,1");
    w.push_back(v);
  }
  if (w.empty()) throw Error("--split is empty; give one weight per rank, e.g. --split 2,1,1");
  return w;
}

std::string format_split(const std::vector<double>& weights) {
  std::string s;
  for (size_t i = 0; i < weights.size(); ++i) {
    std::ostringstream o;
    o << weights[i];
    s += (i ? "," : "") + o.str();
  }
  return s;
}

int max_ranks(const HParams& hp, const SplitUnits& u, Layout layout) {
  // Replicated attention cuts no heads: only the FFN and the vocabulary limit the ranks.
  const int64_t heads =
      layout == Layout::replicated_attention ? std::numeric_limits<int64_t>::max() : hp.n_head / u.head_align;
  // A mixture of experts past its FFN units is split by whole experts.
  int64_t ffn = std::max<int64_t>(hp.n_ff / u.ffn, hp.n_expert);
  // deepseek2's dense and shared-expert FFNs are cut by columns only.
  if (hp.n_ff_dense > 0) ffn = std::min<int64_t>(ffn, hp.n_ff_dense / u.ffn);
  if (hp.n_expert_shared > 0) ffn = std::min<int64_t>(ffn, int64_t{hp.n_ff} * hp.n_expert_shared / u.ffn);
  return static_cast<int>(std::max<int64_t>(1, std::min({heads, ffn, static_cast<int64_t>(hp.n_vocab) / u.vocab})));
}

ShardPlan plan_shards(const HParams& hp, const SplitUnits& u, int ranks, const std::vector<double>& weights_in,
                      Layout layout) {
  const bool replicated = layout == Layout::replicated_attention;
  if (ranks < 1) throw Error("the number of ranks must be at least 1 (got " + std::to_string(ranks) + ")");
  if (!weights_in.empty() && static_cast<int>(weights_in.size()) != ranks)
    throw Error("--split " + format_split(weights_in) + " has " + std::to_string(weights_in.size()) + " weights for " +
                std::to_string(ranks) + " ranks: give one weight per rank");
  const std::vector<double> weights = weights_in.empty() ? std::vector<double>(ranks, 1.0) : weights_in;
  const int limit = max_ranks(hp, u, layout);
  if (ranks > limit) {
    std::string why;
    if (!replicated && hp.n_head / u.head_align < ranks)
      why = std::to_string(hp.n_head) + " attention heads" +
            (u.head_align > 1 ? " in units of " + std::to_string(u.head_align) +
                                    " (the quantisation block of attn_output spans that many heads)"
                              : std::string());
    else if (std::max<int64_t>(hp.n_ff / u.ffn, hp.n_expert) < ranks)
      why = std::to_string(hp.n_ff) + " FFN columns in blocks of " + std::to_string(u.ffn) +
            (hp.n_expert ? " and " + std::to_string(hp.n_expert) + " experts" : std::string());
    else if (hp.n_ff_dense && hp.n_ff_dense / u.ffn < ranks)
      why = std::to_string(hp.n_ff_dense) + " dense FFN columns in blocks of " + std::to_string(u.ffn);
    else if (hp.n_expert_shared && int64_t{hp.n_ff} * hp.n_expert_shared / u.ffn < ranks)
      why = std::to_string(hp.n_ff * hp.n_expert_shared) + " shared-expert FFN columns in blocks of " +
            std::to_string(u.ffn);
    else
      why = std::to_string(hp.n_vocab) + " vocabulary rows";
    throw Error("the model cannot be split over " + std::to_string(ranks) + " ranks: it has only " + why +
                "; the most ranks it allows is " + std::to_string(limit) + " (use --ranks " + std::to_string(limit) +
                " or fewer)");
  }

  // Whole KV-head groups while there are enough of them (each also a whole number of
  // attn_output blocks); past that, query heads with their KV heads replicated.
  const int64_t group_unit = std::lcm(u.kv_group_heads, u.head_align);
  const int64_t head_unit = hp.n_head / group_unit >= ranks ? group_unit : u.head_align;
  bool starved = false;
  const auto head_units = replicated ? std::vector<int64_t>{} : apportion(hp.n_head / head_unit, weights, starved);
  const auto vocab_units = apportion(hp.n_vocab / u.vocab, weights, starved);
  const auto heads =
      replicated ? std::vector<Range>(ranks, Range{0, hp.n_head}) : to_ranges(head_units, head_unit, hp.n_head);
  const auto vocab = to_ranges(vocab_units, u.vocab, hp.n_vocab);
  // The FFN columns of every expert, or, when there are fewer of their units than ranks, whole
  // experts (expert parallelism). Either way each rank adds the same float chunks into double
  // (ForwardPass::experts), so both give one rank's bits.
  const bool whole_experts = hp.n_expert > 0 && hp.n_ff / u.ffn < ranks;
  std::vector<Range> ffn, experts;
  if (whole_experts) {
    experts = to_ranges(apportion(hp.n_expert, weights, starved), 1, hp.n_expert);
    ffn.assign(ranks, Range{0, hp.n_ff});
  } else {
    ffn = to_ranges(apportion(hp.n_ff / u.ffn, weights, starved), u.ffn, hp.n_ff);
    experts.assign(ranks, Range{0, hp.n_expert});
  }
  if (starved && !replicated) {
    // The nearest valid split: what each rank gets in head units, the coarsest of the three cuts.
    std::vector<double> nearest(head_units.begin(), head_units.end());
    throw Error("--split " + format_split(weights) + " gives a rank less than one unit of the model (" +
                std::to_string(hp.n_head / head_unit) + " head units of " + std::to_string(head_unit) +
                " heads); the nearest split that can be made is --split " + format_split(nearest));
  }
  if (starved) {
    // Replicated attention: the FFN (or the experts) is the coarsest cut.
    std::vector<double> nearest;
    for (const Range& r : whole_experts ? experts : ffn) nearest.push_back(static_cast<double>(r.size()));
    throw Error("--split " + format_split(weights) +
                " gives a rank less than one unit of the model's FFN; the nearest split that can be made is --split " +
                format_split(nearest));
  }
  // deepseek2's dense and shared-expert FFNs: cut like a dense FFN, on the same column unit.
  auto other_ffn = [&](int64_t width) {
    if (width == 0) return std::vector<Range>(ranks, Range{0, 0});
    return to_ranges(apportion(width / u.ffn, weights, starved), u.ffn, width);
  };
  const auto dense = other_ffn(hp.n_ff_dense), shared = other_ffn(int64_t{hp.n_ff} * hp.n_expert_shared);
  ShardPlan plan;
  for (int i = 0; i < ranks; ++i)
    plan.parts.push_back({heads[i], ffn[i], vocab[i], experts[i], dense[i], shared[i], replicated && ranks > 1});
  plan.validate(hp);
  return plan;
}

std::string describe_plan(const ShardPlan& plan, const HParams& hp) {
  std::string s;
  for (size_t i = 0; i < plan.parts.size(); ++i) {
    const auto& p = plan.parts[i];
    s += "rank " + std::to_string(i) + ": heads " + range_str(p.q_heads) +
         (p.replicated_attention ? " (replicated)" : "") + " kv " + range_str(p.kv_heads(hp)) + " ffn " +
         range_str(p.ffn) + " vocab " + range_str(p.vocab) +
         (hp.n_expert ? " experts " + range_str(p.experts) : std::string()) + "\n";
  }
  return s;
}

}  // namespace clusterctl::model
