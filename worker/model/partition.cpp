#include "worker/model/partition.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "worker/common/error.h"

namespace clusterctl::model {
namespace {

// Cuts [0, total) into n ranges proportional to weights, each boundary a multiple of `align`
// (the last one is `total`), each part at least `align` long.
std::vector<Range> proportional(int64_t total, const std::vector<double>& weights, int64_t align, const char* what) {
  const int n = static_cast<int>(weights.size());
  if (total / align < n)
    throw Error("cannot split " + std::to_string(total) + " " + what + " into " + std::to_string(n) +
                " parts of at least " + std::to_string(align) + ": use fewer ranks");
  double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<Range> out(n);
  int64_t prev = 0;
  double acc = 0;
  for (int i = 0; i < n; ++i) {
    acc += weights[i];
    int64_t b = (i == n - 1) ? total : std::llround(total * acc / sum / align) * align;
    // Leave at least `align` for this part and for each later one.
    b = std::clamp<int64_t>(b, prev + align, total - int64_t(n - 1 - i) * align);
    if (i == n - 1) b = total;
    out[i] = {prev, b};
    prev = b;
  }
  return out;
}

}  // namespace

const char* layout_name(Layout l) {
  return l == Layout::replicated_attention ? "replicated-attention" : "split-attention";
}

std::optional<Layout> parse_layout(const std::string& text) {
  if (text == "split-attention") return Layout::split_attention;
  if (text == "replicated-attention") return Layout::replicated_attention;
  return std::nullopt;
}

Range Partition::kv_heads(const HParams& hp) const {
  const int64_t group = hp.n_head / hp.n_head_kv;
  if (q_heads.size() <= 0) return {0, 0};
  return {q_heads.begin / group, (q_heads.end - 1) / group + 1};
}

Partition Partition::whole(const HParams& hp) {
  return {{0, hp.n_head},
          {0, hp.n_ff},
          {0, hp.n_vocab},
          {0, hp.n_expert},
          {0, hp.n_ff_dense},
          {0, int64_t{hp.n_ff} * hp.n_expert_shared},
          false};
}

std::string Partition::describe() const {
  auto r = [](const Range& x) { return "[" + std::to_string(x.begin) + "," + std::to_string(x.end) + ")"; };
  return "heads " + r(q_heads) + " ffn " + r(ffn) + " vocab " + r(vocab) +
         (experts.size() > 0 ? " experts " + r(experts) : "") + (dense_ffn.size() > 0 ? " dense " + r(dense_ffn) : "") +
         (shared_ffn.size() > 0 ? " shared " + r(shared_ffn) : "") +
         (replicated_attention ? " attention replicated" : "");
}

ShardPlan ShardPlan::single(const HParams& hp) { return {{Partition::whole(hp)}}; }

ShardPlan ShardPlan::split(const HParams& hp, int n, const std::vector<double>& weights_in, int64_t ffn_align,
                           int64_t vocab_align) {
  if (n < 1) throw Error("the number of ranks must be at least 1 (got " + std::to_string(n) + ")");
  std::vector<double> weights = weights_in.empty() ? std::vector<double>(n, 1.0) : weights_in;
  if (static_cast<int>(weights.size()) != n)
    throw Error("the split has " + std::to_string(weights.size()) + " weights for " + std::to_string(n) + " ranks");
  for (double w : weights)
    if (!(w > 0)) throw Error("split weights must be positive numbers");
  const int64_t group = hp.n_head / hp.n_head_kv;
  std::vector<Range> heads;
  if (n <= static_cast<int>(hp.n_head_kv)) {
    heads = proportional(hp.n_head_kv, weights, 1, "KV heads");
    for (auto& h : heads) h = {h.begin * group, h.end * group};
  } else {
    heads = proportional(hp.n_head, weights, 1, "attention heads");  // KV heads replicated
  }
  auto ffn = proportional(hp.n_ff, weights, ffn_align, "FFN columns");
  auto vocab = proportional(hp.n_vocab, weights, vocab_align, "vocabulary rows");
  auto other_ffn = [&](int64_t width, const char* what) {
    return width > 0 ? proportional(width, weights, ffn_align, what) : std::vector<Range>(n, Range{0, 0});
  };
  auto dense = other_ffn(hp.n_ff_dense, "dense FFN columns");
  auto shared = other_ffn(int64_t{hp.n_ff} * hp.n_expert_shared, "shared-expert FFN columns");
  ShardPlan plan;
  for (int i = 0; i < n; ++i)
    plan.parts.push_back({heads[i], ffn[i], vocab[i], {0, hp.n_expert}, dense[i], shared[i], false});
  plan.validate(hp);
  return plan;
}

void ShardPlan::validate(const HParams& hp) const {
  if (parts.empty()) throw Error("a shard plan needs at least one part");
  auto check = [&](auto get, int64_t total, const char* what) {
    int64_t at = 0;
    for (const auto& p : parts) {
      const Range& r = get(p);
      if (r.begin != at || r.end <= r.begin)
        throw Error(std::string("the shard plan does not cover the ") + what + " in order (part " + p.describe() + ")");
      at = r.end;
    }
    if (at != total)
      throw Error(std::string("the shard plan covers ") + std::to_string(at) + " of " + std::to_string(total) + " " +
                  what);
  };
  const bool replicated = parts[0].replicated_attention;
  for (const auto& p : parts) {
    if (p.replicated_attention != replicated)
      throw Error("the shard plan replicates attention on some ranks but not all (part " + p.describe() + ")");
    if (replicated && p.q_heads != Range{0, hp.n_head})
      throw Error("the shard plan replicates attention but part " + p.describe() + " does not hold every head");
  }
  if (!replicated) check([](const Partition& p) -> const Range& { return p.q_heads; }, hp.n_head, "attention heads");
  check([](const Partition& p) -> const Range& { return p.vocab; }, hp.n_vocab, "vocabulary");
  if (hp.n_ff_dense > 0)
    check([](const Partition& p) -> const Range& { return p.dense_ffn; }, hp.n_ff_dense, "dense FFN columns");
  if (hp.n_expert_shared > 0)
    check([](const Partition& p) -> const Range& { return p.shared_ffn; }, int64_t{hp.n_ff} * hp.n_expert_shared,
          "shared-expert FFN columns");
  const Range all_experts{0, hp.n_expert}, all_ffn{0, hp.n_ff};
  const bool whole_experts = parts.size() > 1 && std::any_of(parts.begin(), parts.end(), [&](const Partition& p) {
                               return p.experts != all_experts;
                             });
  if (!whole_experts) {
    check([](const Partition& p) -> const Range& { return p.ffn; }, hp.n_ff, "FFN columns");
    for (const auto& p : parts)
      if (p.experts != all_experts)
        throw Error("the shard plan gives part " + p.describe() + " other experts than the model's " +
                    std::to_string(hp.n_expert));
    return;
  }
  // Expert parallelism: whole experts, each rank all of their FFN columns.
  check([](const Partition& p) -> const Range& { return p.experts; }, hp.n_expert, "experts");
  for (const auto& p : parts)
    if (p.ffn != all_ffn)
      throw Error("the shard plan splits experts and their FFN columns both (part " + p.describe() + ")");
}

int64_t ShardPlan::max_vocab_slice() const {
  int64_t m = 0;
  for (const auto& p : parts) m = std::max(m, p.vocab.size());
  return m;
}

}  // namespace clusterctl::model
