#include "worker/speculative/model_drafter.h"

#include <algorithm>
#include <chrono>

#include "worker/common/error.h"
#include "worker/speculative/draft_rule.h"

namespace clusterctl::speculative {
namespace {

// The first token id whose text differs, or -1 when the vocabularies are the same.
int64_t first_difference(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  return a.size() == b.size() ? -1 : static_cast<int64_t>(n);
}

}  // namespace

ModelDrafter::ModelDrafter(const std::string& path, const DraftTarget& target) : path_(path) {
  file_ = std::make_unique<gguf::GgufFile>(path);
  const auto tokens = file_->get_string_array("tokenizer.ggml.tokens");
  if (const int64_t at = first_difference(tokens, target.tokens); at >= 0) {
    const auto text = [](const std::vector<std::string>& v, int64_t i) {
      return i < static_cast<int64_t>(v.size()) ? "'" + v[i] + "'" : std::string("nothing");
    };
    throw Error("--draft " + path + " has another vocabulary than the model (" + std::to_string(tokens.size()) +
                " tokens against " + std::to_string(target.tokens.size()) + "; token " + std::to_string(at) + " is " +
                text(tokens, at) + " there and " + text(target.tokens, at) +
                " in the model): a draft model must share the target's tokenizer, e.g. a smaller model of the same "
                "family or a quantized copy ('clusterctl model quantize'), or use --draft ngram");
  }
  comm_ = collectives::make_local_communicator();
  model::EngineOptions opts;
  opts.n_ctx = target.n_ctx;
  opts.n_slots = target.n_slots;
  opts.threads = target.threads;
  opts.pool = target.pool;
  engine_ = std::make_unique<model::Engine>(*file_, *comm_, opts);
  slots_.resize(static_cast<size_t>(target.n_slots));
}

ModelDrafter::~ModelDrafter() = default;

void ModelDrafter::retain(int32_t slot, size_t n_tokens) {
  if (slot < 0 || slot >= static_cast<int32_t>(slots_.size())) return;
  SlotCache& c = slots_[static_cast<size_t>(slot)];
  if (c.skip_to > 0) {
    c = {};  // a window of another sequence's text: start afresh
  } else if (c.tokens.size() > n_tokens) {
    c.tokens.resize(n_tokens);
  }
}

void ModelDrafter::propose(int32_t slot, const std::vector<int32_t>& context, int k, sampling::Sampler* sampler,
                           Draft& out) {
  out.clear();
  catch_up_s_ = 0;
  if (slot < 0 || slot >= static_cast<int32_t>(slots_.size()))
    throw Error("the draft model has no KV slot " + std::to_string(slot));
  if (k <= 0 || context.empty()) return;
  SlotCache& c = slots_[static_cast<size_t>(slot)];
  if (c.skip_to > context.size()) c = {};
  auto make_view = [&] {
    view_.assign(context.begin(), context.begin() + static_cast<ptrdiff_t>(c.skip_from));
    view_.insert(view_.end(), context.begin() + static_cast<ptrdiff_t>(c.skip_to), context.end());
  };
  make_view();
  // Keep what the cache shares with the view, but run at least the last token: its logits are
  // the first draft's.
  auto common = [&] {
    const auto diverge = std::mismatch(c.tokens.begin(), c.tokens.end(), view_.begin(), view_.end()).first;
    return std::min<size_t>(static_cast<size_t>(diverge - c.tokens.begin()), view_.size() - 1);
  };
  size_t keep = common();
  if (!c.tokens.empty() && view_.size() - keep > static_cast<size_t>(kCatchUpMax) &&
      context.size() > static_cast<size_t>(kRestartTokens) + 1) {
    // Far behind: the first token (the model's attention sink, usually BOS) and the latest text.
    c.skip_from = 1;
    c.skip_to = context.size() - kRestartTokens;
    make_view();
    keep = common();
  }
  const int64_t len = static_cast<int64_t>(view_.size());
  k = static_cast<int>(std::min<int64_t>(k, engine_->n_ctx() - len));
  if (k <= 0) return;
  c.tokens.assign(view_.begin(), view_.begin() + static_cast<ptrdiff_t>(keep));
  const std::vector<int32_t> fresh(view_.begin() + static_cast<ptrdiff_t>(keep), view_.end());
  const auto t0 = std::chrono::steady_clock::now();
  model::LocalLogits logits = engine_->prefill(fresh, static_cast<int64_t>(keep), slot);
  catch_up_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  c.tokens.insert(c.tokens.end(), fresh.begin(), fresh.end());
  for (int i = 0; i < k; ++i) {
    int32_t token;
    if (sampler) {
      const auto& q = sampler->distribution(logits.row(logits.rows - 1));
      out.q.push_back(q);
      token = sampling::draw(q, sampler->uniform());
    } else {
      token = engine_->argmax(logits, logits.rows - 1);
    }
    out.tokens.push_back(token);
    if (i + 1 == k) break;
    batch_.clear();
    batch_.add(token, static_cast<int32_t>(len + i), slot, true);
    batch_.n_decode = 1;
    logits = engine_->forward(batch_);
    c.tokens.push_back(token);
  }
}

}  // namespace clusterctl::speculative
