#pragma once
// One rank's inference engine: the model's Partition for this rank, its KV cache, a persistent
// thread pool and the forward pass, plus the cross-rank steps on the logits (arg-max reduction
// for greedy decoding, gather of the vocabulary slices for sampling and scoring).
#include <cstdint>
#include <memory>
#include <vector>

#include "collectives/communicator.h"
#include "worker/gguf/gguf_file.h"
#include "worker/kernels/blocks.h"  // kernels.h uses fp16_t without including it
#include "worker/kernels/kernels.h"
#include "worker/model/forward.h"
#include "worker/model/kv_cache.h"
#include "worker/model/model.h"

namespace clusterctl::model {

struct EngineOptions {
  int64_t n_ctx = 0;        // 0: the model's trained context, at most kDefaultCtx
  int64_t n_slots = 1;      // sequences the KV cache holds at once
  int64_t max_batch = 512;  // tokens per forward pass (prompt processing chunk)
  gguf::GgmlType kv_type = gguf::GgmlType::F16;
  int threads = 0;  // 0: physical cores
  // Run on this pool (another engine's, driven from the same thread, e.g. the model whose draft
  // this is) instead of starting one: two pools' idle workers would spin against the busy
  // ones for the same cores. Must outlive the engine; `threads` is then its size.
  kernels::ThreadPool* pool = nullptr;
  static constexpr int64_t kDefaultCtx = 4096;
};

class Engine {
 public:
  // `file` and `comm` must outlive the Engine. `plan` holds every rank's Partition; this rank
  // computes plan.parts[comm.rank()].
  Engine(const gguf::GgufFile& file, const ShardPlan& plan, collectives::Communicator& comm, EngineOptions opts = {});
  // World size 1 convenience: the whole model.
  Engine(const gguf::GgufFile& file, collectives::Communicator& comm, EngineOptions opts = {});

  const HParams& hparams() const { return model_.hp; }
  const Model& model() const { return model_; }
  const KvCache& cache() const { return *cache_; }
  int64_t n_ctx() const { return cache_->n_ctx(); }
  int64_t max_batch() const { return forward_->max_batch(); }
  int threads() const { return pool_->size(); }
  kernels::ThreadPool& pool() { return *pool_; }
  collectives::Communicator& comm() { return comm_; }

  LocalLogits forward(const Batch& batch) { return forward_->run(batch); }

  // Runs `tokens` of one sequence from position `pos0` in batches of up to max_batch tokens and
  // returns the logits of the last token. Throws clusterctl::Error when they do not fit the context.
  LocalLogits prefill(const std::vector<int32_t>& tokens, int64_t pos0, int32_t slot);

  // Greedy token of logits row `row` over the whole vocabulary (all ranks take part; all get it).
  int32_t argmax(const LocalLogits& logits, int64_t row);
  // The full vocabulary's logits of row `row`, gathered on rank 0 (all ranks take part).
  // Returns a pointer valid until the next call on rank 0, nullptr on other ranks.
  const float* gather(const LocalLogits& logits, int64_t row);

 private:
  collectives::Communicator& comm_;
  ShardPlan plan_;
  Model model_;
  std::unique_ptr<kernels::ThreadPool> own_pool_;
  kernels::ThreadPool* pool_ = nullptr;  // own_pool_, or EngineOptions::pool
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<ForwardPass> forward_;
  Batch batch_;
  std::vector<float> gather_send_, gather_recv_, full_logits_;
};

}  // namespace clusterctl::model
