#include "worker/model/engine.h"

#include <algorithm>
#include <cstring>

#include "worker/common/error.h"

namespace clusterctl::model {
namespace {

const Partition& own_part(const ShardPlan& plan, const collectives::Communicator& comm) {
  if (static_cast<int>(plan.parts.size()) != comm.size())
    throw Error("the shard plan has " + std::to_string(plan.parts.size()) + " parts for " +
                std::to_string(comm.size()) + " ranks");
  return plan.parts[comm.rank()];
}

}  // namespace

Engine::Engine(const gguf::GgufFile& file, collectives::Communicator& comm, EngineOptions opts)
    : Engine(file, ShardPlan::single(Model::read_hparams(file)), comm, opts) {}

Engine::Engine(const gguf::GgufFile& file, const ShardPlan& plan, collectives::Communicator& comm, EngineOptions opts)
    : comm_(comm), plan_(plan), model_(Model::load(file, own_part(plan, comm))) {
  plan_.validate(model_.hp);
  int64_t ctx = opts.n_ctx > 0 ? opts.n_ctx : std::min<int64_t>(model_.hp.n_ctx_train, EngineOptions::kDefaultCtx);
  ctx = std::min<int64_t>(ctx, model_.hp.n_ctx_train);
  if (!opts.pool)
    own_pool_ =
        std::make_unique<kernels::ThreadPool>(opts.threads > 0 ? opts.threads : kernels::default_thread_count());
  pool_ = opts.pool ? opts.pool : own_pool_.get();
  cache_ = std::make_unique<KvCache>(model_.hp, model_.part, ctx, opts.n_slots, opts.kv_type);
  forward_ = std::make_unique<ForwardPass>(model_, *cache_, comm_, *pool_, std::min(opts.max_batch, ctx));
  const int64_t slice = plan_.max_vocab_slice();
  gather_send_.resize(slice);
  if (comm_.rank() == 0) {
    gather_recv_.resize(slice * comm_.size());
    full_logits_.resize(model_.hp.n_vocab);
  }
}

LocalLogits Engine::prefill(const std::vector<int32_t>& tokens, int64_t pos0, int32_t slot) {
  if (tokens.empty()) throw Error("nothing to process: the prompt has no tokens");
  if (pos0 + static_cast<int64_t>(tokens.size()) > n_ctx())
    throw Error("the prompt needs " + std::to_string(pos0 + tokens.size()) + " positions but the context holds " +
                std::to_string(n_ctx()) + "; shorten the prompt or raise --ctx (the model allows " +
                std::to_string(model_.hp.n_ctx_train) + ")");
  LocalLogits out;
  const int64_t n = static_cast<int64_t>(tokens.size()), step = forward_->max_batch();
  for (int64_t i = 0; i < n; i += step) {
    batch_.clear();
    const int64_t end = std::min(n, i + step);
    for (int64_t j = i; j < end; ++j) batch_.add(tokens[j], static_cast<int32_t>(pos0 + j), slot, j == n - 1);
    batch_.n_decode = 0;  // prompt tokens take the tiles, even one: as the serving scheduler's do
    out = forward_->run(batch_);
  }
  return out;
}

int32_t Engine::argmax(const LocalLogits& logits, int64_t row) {
  const float* r = logits.row(row);
  int64_t best = 0;
  for (int64_t i = 1; i < logits.cols; ++i)
    if (r[i] > r[best]) best = i;
  float value = r[best];
  int64_t index = logits.vocab_begin + best;
  comm_.argmax(value, index);
  return static_cast<int32_t>(index);
}

const float* Engine::gather(const LocalLogits& logits, int64_t row) {
  if (comm_.size() == 1) return logits.row(row);
  std::memcpy(gather_send_.data(), logits.row(row), logits.cols * sizeof(float));
  comm_.gather(gather_send_.data(), gather_send_.size() * sizeof(float), gather_recv_.data(), 0);
  if (comm_.rank() != 0) return nullptr;
  for (int r = 0; r < comm_.size(); ++r) {
    const Range& v = plan_.parts[r].vocab;
    std::memcpy(full_logits_.data() + v.begin, gather_recv_.data() + r * gather_send_.size(), v.size() * sizeof(float));
  }
  return full_logits_.data();
}

}  // namespace clusterctl::model
