#include "worker/speculative/model_drafter.h"

#include <algorithm>

#include "worker/common/error.h"

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
  cached_.resize(static_cast<size_t>(target.n_slots));
}

ModelDrafter::~ModelDrafter() = default;

void ModelDrafter::retain(int32_t slot, size_t n_tokens) {
  if (slot < 0 || slot >= static_cast<int32_t>(cached_.size())) return;
  std::vector<int32_t>& cached = cached_[static_cast<size_t>(slot)];
  if (cached.size() > n_tokens) cached.resize(n_tokens);
}

void ModelDrafter::propose(int32_t slot, const std::vector<int32_t>& context, int k, sampling::Sampler* sampler,
                           Draft& out) {
  out.clear();
  if (slot < 0 || slot >= static_cast<int32_t>(cached_.size()))
    throw Error("the draft model has no KV slot " + std::to_string(slot));
  const int64_t len = static_cast<int64_t>(context.size());
  k = static_cast<int>(std::min<int64_t>(k, engine_->n_ctx() - len));
  if (k <= 0 || len == 0) return;
  std::vector<int32_t>& cached = cached_[static_cast<size_t>(slot)];
  // Keep what the cache shares with the context, but run at least the last token: its logits
  // are the first draft's.
  const auto diverge = std::mismatch(cached.begin(), cached.end(), context.begin(), context.end()).first;
  const int64_t keep = std::min<int64_t>(diverge - cached.begin(), len - 1);
  cached.assign(context.begin(), context.begin() + keep);
  const std::vector<int32_t> fresh(context.begin() + keep, context.end());
  model::LocalLogits logits = engine_->prefill(fresh, keep, slot);
  cached.insert(cached.end(), fresh.begin(), fresh.end());
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
    cached.push_back(token);
  }
}

}  // namespace clusterctl::speculative
