#pragma once
// The continuous-batching scheduler behind the API, for any world size. Each step it builds ONE
// multi-sequence batch: a decode token of every running sequence plus prompt chunks of the newly
// admitted ones (up to `step_tokens` in all), and runs it on every rank through the step protocol,
// so each layer's all-reduce carries the whole batch. Every sequence has its own KV-cache slot,
// taken when it starts and freed the step it ends, is cancelled or its client disconnects;
// requests beyond the free slots wait in a bounded queue (QueueFullError beyond that). A slot
// keeps its prompt's keys and values after its request: the next request takes the free slot
// sharing the longest prefix with its prompt and prefills only the rest (prompt_cache.h).
//
// Exactness: the matrix-vector kernels (decoding) and the tiles (prompts) sum in different
// orders, so a greedy sequence could pick a different token alone than beside others if the
// kernels were chosen by batch size. Each token takes its role's kernels instead
// (model::Batch::n_decode): generated tokens the matrix-vector kernels, prompt tokens the tiles,
// however many run together, which is also what `clusterctl run` does; so a sequence's tokens do
// not depend on what else is running, and a lone stream decodes at `run`'s speed.
//
// Speculative decoding (options.draft): each decoding sequence adds its drafts after its decode
// token, all as generated tokens of the same step, and keeps what its target rows confirm
// (speculative/acceptance.h): greedy output stays plain greedy's, sampled output keeps the
// target's distribution. A step that already carries many sequences has shared its round trips
// among them, so the drafts per sequence shrink as the batch widens: each step's drafts go where
// they most likely turn into tokens while the step's expected tokens per second grow, from each
// sequence's measured acceptance rate, the step's measured cost by width and the draft's cost
// (speculative/batch_drafts.h); a sequence alone in the step drafts by `run`'s own rule
// (speculative/acceptance.h). Requests with penalties over generated tokens, logprobs or a JSON
// constraint decode without drafts.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "worker/model/engine.h"
#include "worker/parallel/step_protocol.h"
#include "worker/server/generation_service.h"
#include "worker/server/prompt_cache.h"
#include "worker/speculative/batch_drafts.h"
#include "worker/speculative/drafter.h"
#include "worker/tokenizer/tokenizer.h"

namespace clusterctl::server {

struct SchedulerOptions {
  int64_t parallel = 4;     // sequences decoding at once; the engine needs one KV slot each
  size_t max_queued = 32;   // requests waiting for a slot; more get QueueFullError
  int64_t step_tokens = 0;  // tokens per forward step (decodes + prompt chunks); 0: the engine's batch size
  // With nothing to run for this long, a heartbeat step tells the other ranks that rank 0 is alive
  // (StepLeader::heartbeat); 0: none (one rank, or no timeout).
  double heartbeat_seconds = 0;
  // Speculative decoding (worker/speculative): "ngram", a draft model's GGUF file, or "" (none);
  // tokens drafted per sequence and step, adapting in [draft_min, draft_max].
  std::string draft;
  int draft_min = 0, draft_max = 8;
  // Every this many seconds of steps, a step also gathers every rank's figures (StepLeader::
  // set_report_interval) for load(); 0: never.
  double report_seconds = 1;
};

// KV slots an engine needs for `parallel` sequences.
inline int64_t kv_slots_for(int64_t parallel) { return parallel; }

class BatchScheduler : public GenerationService {
 public:
  // `engine`, `leader` and `tokenizer` must outlive the scheduler; `engine` needs
  // kv_slots_for(options.parallel) slots. Throws clusterctl::Error on bad options.
  BatchScheduler(model::Engine& engine, parallel::StepLeader& leader, const tokenizer::Tokenizer& tokenizer,
                 ModelInfo info, std::vector<ClusterNode> nodes, SchedulerOptions options);
  ~BatchScheduler() override;

  // Runs steps on the calling thread (the only one that touches the engine and the communicator)
  // until stop(); then every request still queued or running finishes as cancelled. Rethrows an
  // engine error after failing every request with it.
  void run();
  // Any thread: makes run() return.
  void stop();
  // Any thread, also while run() is stuck inside a step (a node is lost and the collectives wait
  // for it): every request queued or running ends now with `message` as its error, and every
  // later submit() throws ServiceUnavailableError with it.
  void fail(const std::string& message);
  std::optional<std::string> unavailable() const override;

  const ModelInfo& model() const override { return info_; }
  std::shared_ptr<GenerationHandle> submit(GenerationRequest request, GenerationCallbacks callbacks) override;
  ServiceStats stats() const override;
  std::vector<ClusterNode> nodes() const override { return nodes_; }
  ClusterLoad load() const override;
  std::vector<int32_t> tokenize(const std::string& text, bool add_special, bool parse_special) const override;
  std::string token_text(int32_t id) const override;
  std::string detokenize(const std::vector<int32_t>& ids) const override;

 private:
  struct Inbox;
  struct Sequence;
  void admit(std::vector<std::shared_ptr<Sequence>>& cancelled_in_queue,
             std::vector<std::shared_ptr<Sequence>>& failed);
  void step();
  void finish(Sequence& seq, FinishReason reason, const std::string& message = {});
  int32_t sample(Sequence& seq, const float* logits);
  void report_logprobs(Sequence& seq);
  // Emits a generated token; false when the sequence ended (a stop token or its budget).
  bool emit(Sequence& seq, int32_t token);
  // Each decoding sequence's drafts for this step (seq.draft), `decoding` of them in the step.
  void draft_for_step(size_t decoding);
  std::shared_ptr<const std::vector<std::string>> token_texts();
  // After a step or a heartbeat: tokens, queue and the ranks' last report into the history.
  void record_load();

  model::Engine& engine_;
  parallel::StepLeader& leader_;
  const tokenizer::Tokenizer& tokenizer_;
  ModelInfo info_;
  std::vector<ClusterNode> nodes_;
  SchedulerOptions options_;
  std::vector<int32_t> stop_tokens_;  // EOS, EOT

  std::shared_ptr<Inbox> inbox_;  // shared with the handles, which wake the loop on cancel
  // Scheduler thread only:
  std::vector<std::shared_ptr<Sequence>> running_;  // admission order
  PromptCache prompt_cache_;                        // the KV slots: which are free, what their caches hold
  std::vector<parallel::StepToken> step_tokens_;
  std::shared_ptr<const std::vector<std::string>> token_texts_;
  std::unique_ptr<speculative::Drafter> drafter_;  // options.draft
  // Speculation's measured costs by the count of decoding sequences, in units of their plain step:
  // a step by its width in generated tokens (steps without prompt tokens), a drafted token while
  // drafting every step, a probe's drafting (its catch-up).
  std::unique_ptr<speculative::BatchDrafting> batch_drafting_;
  uint64_t tokens_emitted_ = 0, tokens_recorded_ = 0, reports_seen_ = 0;
};

}  // namespace clusterctl::server
