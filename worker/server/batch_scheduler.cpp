#include "worker/server/batch_scheduler.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>

#include "worker/common/error.h"
#include "worker/sampling/json_matcher.h"
#include "worker/sampling/sampler.h"
#include "worker/speculative/acceptance.h"
#include "worker/speculative/draft_rule.h"
#include "worker/speculative/speculative_decode.h"
#include "worker/tokenizer/stream_decoder.h"

namespace clusterctl::server {

// What the HTTP threads and the scheduler thread share.
struct BatchScheduler::Inbox {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::shared_ptr<Sequence>> queue;  // waiting for a slot
  bool stopping = false;
  std::optional<std::string> failure;         // set by fail()
  std::vector<std::weak_ptr<Sequence>> live;  // every sequence submitted, for fail()
  size_t running = 0;                         // copies of the scheduler's state for stats()
  collectives::CommStats comm;
  uint64_t draft_tokens = 0, draft_accepted = 0;
  uint64_t prompt_tokens_cached = 0, prompt_tokens_evaluated = 0, prompt_cache_hits = 0;
  LoadHistory history;    // the last minutes, for the dashboard
  std::string allreduce;  // the communicator's description (more than one rank)
};

struct BatchScheduler::Sequence : GenerationHandle {
  std::weak_ptr<Inbox> inbox;
  GenerationRequest request;
  GenerationCallbacks callbacks;
  std::vector<int32_t> prompt;
  std::atomic<bool> cancelled{false};

  // The callbacks go through these two: fail() may end a sequence from another thread while the
  // scheduler thread still holds it; whatever comes second is dropped.
  void emit_token(std::string_view text, int32_t id) {
    std::lock_guard lock(callback_mutex);
    if (!closed && callbacks.on_token) callbacks.on_token(text, id);
  }
  void emit_done(FinishReason reason, Usage usage, const std::string& message) {
    std::lock_guard lock(callback_mutex);
    if (closed) return;
    closed = true;
    if (callbacks.on_done) callbacks.on_done(reason, usage, message);
  }
  std::mutex callback_mutex;
  bool closed = false;

  void cancel() override {
    cancelled = true;
    // Wake the loop so it frees the slot now, even when it is idle waiting for work.
    if (auto in = inbox.lock()) {
      std::lock_guard lock(in->mutex);
      in->wake.notify_all();
    }
  }

  // Scheduler thread only, from admission on.
  int32_t slot = -1;
  size_t prompt_done = 0;  // prompt tokens already in the KV cache
  size_t reused = 0;       // of them, taken from the slot's earlier request (the prompt cache)
  int32_t pending = -1;    // generated token not yet fed back (decode input of the next step)
  int64_t n_past = 0;      // positions in the KV cache
  int64_t budget = 0;      // tokens it may generate: max_tokens, and what the context leaves
  int generated = 0;
  bool greedy = true;
  bool done = false;
  std::string failure;  // why it could not start
  std::unique_ptr<sampling::Sampler> sampler;
  std::unique_ptr<tokenizer::StreamDecoder> decoder;
  sampling::TokenLogprobs logprobs;  // of the token the last step sampled (SamplingParams::logprobs)
  std::string sample_error;          // the sampler failed in the last step (e.g. every token banned)
  // Speculative decoding: the text so far (what the drafter continues), this step's drafts, the
  // target's distributions of this step's rows (sampled), how many to draft.
  bool speculate = false;
  std::vector<int32_t> context;
  speculative::Draft draft;
  double draft_s = 0, draft_catch_up_s = 0;
  int steps_without_draft = 0;  // steps since its last drafts (a probe's catch-up follows them)
  bool drafted_before = false;
  std::vector<std::vector<sampling::TokenProb>> p;
  std::unique_ptr<speculative::DraftLength> draft_length;
};

namespace {

// The sampler for an API request: OpenAI's semantics (no top-k/min-p cut unless asked for).
sampling::SamplerParams sampler_params_of(const SamplingParams& sp) {
  sampling::SamplerParams p;
  // top_p 0 keeps only the most likely token: greedy, as temperature 0.
  const bool greedy = !(sp.temperature > 0.0f) || !(sp.top_p > 0.0f);
  p.temperature = greedy ? 0.0f : sp.temperature;
  p.top_p = greedy ? 1.0f : std::min(sp.top_p, 1.0f);
  p.top_k = sp.top_k;
  p.min_p = sp.min_p;
  p.repeat_penalty = sp.repetition_penalty;
  p.presence_penalty = 0;
  p.frequency_penalty = sp.frequency_penalty;
  p.generated_presence_penalty = sp.presence_penalty;
  p.logit_bias = sp.logit_bias;
  p.logprobs = sp.logprobs;
  p.seed = sp.seed ? *sp.seed : std::random_device{}();
  return p;
}

}  // namespace

BatchScheduler::BatchScheduler(model::Engine& engine, parallel::StepLeader& leader,
                               const tokenizer::Tokenizer& tokenizer, ModelInfo info, std::vector<ClusterNode> nodes,
                               SchedulerOptions options)
    : engine_(engine),
      leader_(leader),
      tokenizer_(tokenizer),
      info_(std::move(info)),
      nodes_(std::move(nodes)),
      options_(options),
      inbox_(std::make_shared<Inbox>()),
      prompt_cache_(static_cast<int32_t>(options.parallel)) {
  if (options_.parallel < 1) throw Error("--parallel must be at least 1 (sequences decoding at once)");
  if (engine_.cache().n_slots() < kv_slots_for(options_.parallel))
    throw Error("the engine has " + std::to_string(engine_.cache().n_slots()) + " KV slots but " +
                std::to_string(options_.parallel) + " parallel sequences need " +
                std::to_string(kv_slots_for(options_.parallel)));
  if (options_.step_tokens <= 0) options_.step_tokens = engine_.max_batch();
  options_.step_tokens = std::min(options_.step_tokens, engine_.max_batch());
  // Every running sequence decodes each step.
  if (options_.step_tokens < options_.parallel)
    throw Error("--batch " + std::to_string(options_.step_tokens) + " is too small for --parallel " +
                std::to_string(options_.parallel) + ": a step holds one token of every sequence; raise --batch to " +
                std::to_string(options_.parallel) + " or more");
  for (auto id : {tokenizer_.vocab().eos(), tokenizer_.vocab().eot()})
    if (id >= 0) stop_tokens_.push_back(id);
  leader_.set_report_interval(options_.report_seconds);
  if (engine_.comm().size() > 1) inbox_->allreduce = engine_.comm().describe();
  if (!options_.draft.empty()) {
    speculative::DraftLength check(options_.draft_min, options_.draft_max);  // throws on a bad range
    speculative::DraftTarget target{
        {}, engine_.n_ctx(), kv_slots_for(options_.parallel), engine_.threads(), &engine_.pool()};
    for (size_t id = 0; id < tokenizer_.vocab().size(); ++id)
      target.tokens.push_back(tokenizer_.vocab().text(static_cast<int32_t>(id)));
    drafter_ = speculative::open_drafter(options_.draft, target);
    batch_drafting_ = std::make_unique<speculative::BatchDrafting>(static_cast<int>(options_.step_tokens),
                                                                   options_.draft_max, options_.draft_min > 0);
  }
}

BatchScheduler::~BatchScheduler() = default;

std::shared_ptr<GenerationHandle> BatchScheduler::submit(GenerationRequest request, GenerationCallbacks callbacks) {
  auto seq = std::make_shared<Sequence>();
  seq->inbox = inbox_;
  // Chat prompts carry the template's BOS and control-token text; plain prompts are user text.
  try {
    seq->prompt = request.templated ? tokenizer_.tokenize(request.prompt, false, true)
                                    : tokenizer_.tokenize(request.prompt, true, false);
  } catch (const std::exception& e) {
    throw InvalidRequestError(std::string("the prompt cannot be tokenized: ") + e.what(), "invalid_prompt");
  }
  if (seq->prompt.empty()) throw InvalidRequestError("the prompt gives no tokens", "empty_prompt");
  if (static_cast<int64_t>(seq->prompt.size()) >= engine_.n_ctx()) {
    throw InvalidRequestError("the prompt has " + std::to_string(seq->prompt.size()) +
                                  " tokens but the context holds " + std::to_string(engine_.n_ctx()) +
                                  "; shorten it (or restart the server with a larger --ctx)",
                              "context_length_exceeded");
  }
  seq->request = std::move(request);
  seq->callbacks = std::move(callbacks);
  {
    std::lock_guard lock(inbox_->mutex);
    if (inbox_->failure) throw ServiceUnavailableError(*inbox_->failure);
    if (inbox_->stopping) throw QueueFullError("the server is shutting down", 5);
    if (inbox_->queue.size() >= options_.max_queued) {
      // A slot frees when a running sequence ends; a rough wait is a second per queued round.
      const int wait = 1 + static_cast<int>(inbox_->queue.size() / static_cast<size_t>(options_.parallel));
      throw QueueFullError("the request queue is full (" + std::to_string(options_.max_queued) + " waiting, " +
                               std::to_string(options_.parallel) + " decoding); retry later",
                           wait);
    }
    inbox_->queue.push_back(seq);
    std::erase_if(inbox_->live, [](const auto& w) { return w.expired(); });
    inbox_->live.push_back(seq);
  }
  inbox_->wake.notify_all();
  return seq;
}

ServiceStats BatchScheduler::stats() const {
  std::lock_guard lock(inbox_->mutex);
  ServiceStats s;
  s.queued = inbox_->queue.size();
  s.running = inbox_->running;
  s.allreduce_seconds_total = inbox_->comm.seconds;
  s.allreduce_count = inbox_->comm.allreduce_calls;
  s.draft_tokens = inbox_->draft_tokens;
  s.draft_accepted = inbox_->draft_accepted;
  s.prompt_tokens_cached = inbox_->prompt_tokens_cached;
  s.prompt_tokens_evaluated = inbox_->prompt_tokens_evaluated;
  s.prompt_cache_hits = inbox_->prompt_cache_hits;
  return s;
}

void BatchScheduler::stop() {
  {
    std::lock_guard lock(inbox_->mutex);
    inbox_->stopping = true;
  }
  inbox_->wake.notify_all();
}

void BatchScheduler::fail(const std::string& message) {
  std::vector<std::shared_ptr<Sequence>> live;
  {
    std::lock_guard lock(inbox_->mutex);
    if (!inbox_->failure) inbox_->failure = message;
    // Not `stopping`: run() going on (or staying stuck) keeps the HTTP server answering 503.
    // Queued requests never start; running ones end here, whatever their steps still do.
    inbox_->queue.clear();
    for (const auto& w : inbox_->live)
      if (auto seq = w.lock()) live.push_back(std::move(seq));
  }
  for (auto& seq : live)
    seq->emit_done(FinishReason::error, Usage{static_cast<int>(seq->prompt.size()), 0, 0}, message);
}

std::optional<std::string> BatchScheduler::unavailable() const {
  std::lock_guard lock(inbox_->mutex);
  return inbox_->failure;
}

void BatchScheduler::finish(Sequence& seq, FinishReason reason, const std::string& message) {
  if (seq.done) return;
  seq.done = true;
  if (seq.decoder && reason != FinishReason::error) {
    const std::string rest = seq.decoder->finish();
    if (!rest.empty()) seq.emit_token(rest, -1);
  }
  if (seq.slot >= 0) {
    prompt_cache_.release(seq.slot);
    seq.slot = -1;
  }
  seq.emit_done(reason, Usage{static_cast<int>(seq.prompt.size()), seq.generated, static_cast<int>(seq.reused)},
                message);
}

// Moves queued requests into free slots (arrival order); collects queued ones already cancelled.
void BatchScheduler::admit(std::vector<std::shared_ptr<Sequence>>& cancelled_in_queue,
                           std::vector<std::shared_ptr<Sequence>>& failed) {
  std::lock_guard lock(inbox_->mutex);
  auto& q = inbox_->queue;
  for (auto it = q.begin(); it != q.end();) {
    if ((*it)->cancelled) {
      cancelled_in_queue.push_back(*it);
      it = q.erase(it);
    } else {
      ++it;
    }
  }
  while (!q.empty() && prompt_cache_.free_slots() > 0) {
    std::shared_ptr<Sequence> seq = q.front();
    q.pop_front();
    const PromptCache::Choice choice = *prompt_cache_.acquire(seq->prompt, seq->request.cache_prompt);
    seq->slot = choice.slot;
    // The sequence starts after what the slot's cache holds of its prompt; the draft model keeps
    // no more of its own, so its cache is as exact as the target's (prompt_cache.h).
    seq->reused = seq->prompt_done = choice.reused;
    seq->n_past = static_cast<int64_t>(choice.reused);
    if (drafter_) drafter_->retain(seq->slot, choice.reused);
    inbox_->prompt_tokens_cached += choice.reused;
    inbox_->prompt_cache_hits += choice.reused > 0 ? 1 : 0;
    // A sequence that cannot start fails alone (its slot goes back); the loop serves the others.
    try {
      const SamplingParams& sp = seq->request.sampling;
      sampling::SamplerParams p = sampler_params_of(sp);
      // Plain greedy decoding takes the cross-rank arg-max; anything else needs the full logits here.
      seq->greedy = p.plain_greedy() && !sp.constrain_json;
      if (!seq->greedy) {
        seq->sampler = std::make_unique<sampling::Sampler>(engine_.hparams().n_vocab, std::move(p));
        for (int32_t t : seq->prompt) seq->sampler->accept(t);
        if (sp.constrain_json) {
          seq->sampler->set_constraint(std::make_unique<sampling::JsonTokenConstraint>(
              sp.json_schema, token_texts(), stop_tokens_, tokenizer_.strips_leading_space()));
        }
      }
      seq->decoder = std::make_unique<tokenizer::StreamDecoder>(tokenizer_, seq->request.render_special);
      // Penalties over the generated text, logprobs or a JSON constraint would see drafts as text
      // or need every token's own step: such a request decodes without drafts (speculation_keeps).
      seq->speculate =
          drafter_ && !sp.constrain_json && (!seq->sampler || speculative::speculation_keeps(seq->sampler->params()));
      if (seq->speculate) {
        seq->context = seq->prompt;
        seq->draft_length = std::make_unique<speculative::DraftLength>(options_.draft_min, options_.draft_max);
      }
      seq->budget = std::max<int64_t>(
          1, std::min<int64_t>(seq->request.max_tokens, engine_.n_ctx() - static_cast<int64_t>(seq->prompt.size())));
    } catch (const std::exception& e) {
      seq->failure = e.what();
      failed.push_back(std::move(seq));
      continue;
    }
    running_.push_back(std::move(seq));
  }
  inbox_->running = running_.size();
}

void BatchScheduler::record_load() {
  const auto now = LoadHistory::Clock::now();
  std::lock_guard lock(inbox_->mutex);
  inbox_->history.add_tokens(tokens_emitted_ - tokens_recorded_, now);
  tokens_recorded_ = tokens_emitted_;
  inbox_->history.observe_queue(inbox_->queue.size(), running_.size(), now);
  if (leader_.reports() != reports_seen_) {
    reports_seen_ = leader_.reports();
    inbox_->history.observe_ranks(leader_.figures(), now);
  }
}

ClusterLoad BatchScheduler::load() const {
  std::lock_guard lock(inbox_->mutex);
  const auto now = LoadHistory::Clock::now();
  return {inbox_->history.totals(), inbox_->history.per_token(std::chrono::seconds(60), now),
          inbox_->history.points(now), inbox_->allreduce};
}

void BatchScheduler::run() {
  try {
    // The ranks' figures from the start (memory, the model's share), before any request.
    if (options_.report_seconds > 0) {
      leader_.heartbeat();
      record_load();
    }
    for (;;) {
      {
        std::unique_lock lock(inbox_->mutex);
        const auto ready = [&] { return inbox_->stopping || !inbox_->queue.empty() || !running_.empty(); };
        if (options_.heartbeat_seconds > 0) {
          if (!inbox_->wake.wait_for(lock, std::chrono::duration<double>(options_.heartbeat_seconds), ready)) {
            lock.unlock();
            leader_.heartbeat();
            record_load();
            continue;
          }
        } else {
          inbox_->wake.wait(lock, ready);
        }
        if (inbox_->stopping) break;
      }
      std::vector<std::shared_ptr<Sequence>> cancelled_in_queue;
      // Cancelled sequences leave before the next step: their slots go to queued requests at once.
      for (auto& seq : running_)
        if (seq->cancelled) finish(*seq, FinishReason::cancelled);
      std::erase_if(running_, [](const auto& s) { return s->done; });
      std::vector<std::shared_ptr<Sequence>> failed;
      admit(cancelled_in_queue, failed);
      for (auto& seq : cancelled_in_queue) finish(*seq, FinishReason::cancelled);
      for (auto& seq : failed) finish(*seq, FinishReason::error, seq->failure);
      if (!running_.empty()) {
        step();
        // Going idle: the ranks' figures of the last steps now, not at the next heartbeat.
        bool idle = std::all_of(running_.begin(), running_.end(), [](const auto& seq) { return seq->done; });
        if (idle) {
          std::lock_guard lock(inbox_->mutex);
          idle = inbox_->queue.empty();
        }
        if (idle) leader_.report_now();
        record_load();
      }
    }
  } catch (const std::exception& e) {
    // The engine failed: every request learns why; the caller decides whether the job goes on.
    const std::string message = e.what();
    for (auto& seq : running_) finish(*seq, FinishReason::error, message);
    running_.clear();
    std::deque<std::shared_ptr<Sequence>> queued;
    {
      std::lock_guard lock(inbox_->mutex);
      queued.swap(inbox_->queue);
      inbox_->running = 0;
      inbox_->stopping = true;
    }
    for (auto& seq : queued) finish(*seq, FinishReason::error, message);
    throw;
  }
  for (auto& seq : running_) finish(*seq, FinishReason::cancelled);
  running_.clear();
  std::deque<std::shared_ptr<Sequence>> queued;
  {
    std::lock_guard lock(inbox_->mutex);
    queued.swap(inbox_->queue);
    inbox_->running = 0;
  }
  for (auto& seq : queued) finish(*seq, FinishReason::cancelled);
}

// Runs on the scheduler thread inside the step: a sampler failure fails its request alone.
int32_t BatchScheduler::sample(Sequence& seq, const float* logits) {
  if (!seq.sampler) return -1;
  try {
    return seq.sampler->sample(logits, seq.request.sampling.logprobs >= 0 ? &seq.logprobs : nullptr);
  } catch (const std::exception& e) {
    seq.sample_error = e.what();
    return -1;
  }
}

void BatchScheduler::report_logprobs(Sequence& seq) {
  auto entry = [&](int32_t id, float logprob) {
    return TokenLogprob{id, tokenizer_.vocab().valid(id) ? tokenizer_.piece(id) : std::string(), logprob};
  };
  TokenLogprobs out;
  out.chosen = entry(seq.logprobs.token, seq.logprobs.logprob);
  for (const auto& [id, lp] : seq.logprobs.top) out.top.push_back(entry(id, lp));
  seq.callbacks.on_logprobs(out);
}

// What each token adds to the answer, for structured output's constraint (built on first use).
std::shared_ptr<const std::vector<std::string>> BatchScheduler::token_texts() {
  if (!token_texts_) {
    auto texts = std::make_shared<std::vector<std::string>>(engine_.hparams().n_vocab);
    for (size_t id = 0; id < texts->size(); ++id)
      if (tokenizer_.vocab().valid(static_cast<int32_t>(id))) (*texts)[id] = tokenizer_.piece(static_cast<int32_t>(id));
    token_texts_ = std::move(texts);
  }
  return token_texts_;
}

std::vector<int32_t> BatchScheduler::tokenize(const std::string& text, bool add_special, bool parse_special) const {
  return tokenizer_.tokenize(text, add_special, parse_special);
}

std::string BatchScheduler::token_text(int32_t id) const {
  if (!tokenizer_.vocab().valid(id)) throw Error("no token has the id " + std::to_string(id));
  return tokenizer_.piece(id);
}

std::string BatchScheduler::detokenize(const std::vector<int32_t>& ids) const {
  for (int32_t id : ids)
    if (!tokenizer_.vocab().valid(id)) throw Error("no token has the id " + std::to_string(id));
  return tokenizer_.detokenize(ids);
}

bool BatchScheduler::emit(Sequence& seq, int32_t token) {
  if (std::find(stop_tokens_.begin(), stop_tokens_.end(), token) != stop_tokens_.end()) {
    finish(seq, FinishReason::stop);
    return false;
  }
  ++seq.generated;
  ++tokens_emitted_;
  if (seq.sampler) seq.sampler->accept(token, true);
  if (seq.speculate) seq.context.push_back(token);
  if (seq.request.sampling.logprobs >= 0 && seq.callbacks.on_logprobs) report_logprobs(seq);
  seq.emit_token(seq.decoder->push(token), token);
  if (seq.generated >= seq.budget) {
    finish(seq, FinishReason::length);
    return false;
  }
  return true;
}

void BatchScheduler::draft_for_step(size_t decoding) {
  if (!drafter_ || decoding == 0) return;
  const int64_t n = static_cast<int64_t>(decoding);
  // Every sequence keeps its decode token within the step's size.
  const int64_t room = std::max<int64_t>(0, (options_.step_tokens - n) / n);
  std::vector<Sequence*> drafting;
  std::vector<speculative::SequenceDrafts> wants;
  for (auto& s : running_) {
    Sequence& seq = *s;
    if (seq.prompt_done < seq.prompt.size()) continue;
    seq.draft.clear();
    if (!seq.speculate) continue;
    const int max = static_cast<int>(
        std::min<int64_t>({options_.draft_max, room, std::max<int64_t>(0, seq.budget - seq.generated - 1)}));
    drafting.push_back(&seq);
    wants.push_back({seq.draft_length->acceptance(), std::min(options_.draft_min, max), max});
  }
  if (drafting.empty()) return;
  const int width = static_cast<int>(n);
  // One sequence alone decodes as `run` does, by its own rule. Several share the step: by the
  // step's costs (BatchDrafting).
  std::vector<int> k;
  if (drafting.size() == 1 && width == 1) {
    k = {std::min(drafting[0]->draft_length->next(), wants[0].max)};
  } else {
    std::vector<int> idle;
    for (const Sequence* seq : drafting) idle.push_back(seq->steps_without_draft);
    k = batch_drafting_->drafts(width, std::move(wants), idle);
  }
  for (size_t i = 0; i < drafting.size(); ++i) {
    Sequence& seq = *drafting[i];
    const auto t0 = std::chrono::steady_clock::now();
    if (k[i] > 0) drafter_->propose(seq.slot, seq.context, k[i], seq.sampler.get(), seq.draft);
    seq.draft_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    seq.draft_catch_up_s = k[i] > 0 ? drafter_->last_catch_up_s() : 0;
  }
}

void BatchScheduler::step() {
  using parallel::StepToken;
  step_tokens_.clear();
  // Which sequence each entry of step_tokens_ feeds, how many tokens, and how many of them want
  // logits (a decoding sequence: all, its decode token and its drafts; a prompt chunk: its last
  // token when it ends the prompt).
  struct Fed {
    Sequence* seq;
    size_t tokens;
    size_t rows;
    bool decode;
  };
  std::vector<Fed> fed;
  size_t decoding = 0;
  for (auto& s : running_) decoding += s->prompt_done >= s->prompt.size() ? 1 : 0;
  draft_for_step(decoding);
  // Decodes first: every sequence past its prompt advances one token each step, and its drafts.
  for (auto& s : running_) {
    Sequence& seq = *s;
    if (seq.prompt_done < seq.prompt.size()) continue;
    const int32_t kind = seq.greedy ? StepToken::kGreedy : StepToken::kSampled;
    step_tokens_.push_back({seq.pending, static_cast<int32_t>(seq.n_past), seq.slot, kind});
    for (size_t i = 0; i < seq.draft.tokens.size(); ++i)
      step_tokens_.push_back({seq.draft.tokens[i], static_cast<int32_t>(seq.n_past + 1 + i), seq.slot, kind});
    const size_t n = 1 + seq.draft.tokens.size();
    seq.p.resize(n);
    fed.push_back({&seq, n, n, true});
  }
  const int64_t n_decode = static_cast<int64_t>(step_tokens_.size());
  // Prompt chunks fill what is left of the step, oldest request first.
  int64_t room = options_.step_tokens - n_decode;
  for (auto& s : running_) {
    Sequence& seq = *s;
    if (seq.prompt_done >= seq.prompt.size() || room <= 0) continue;
    const size_t n = std::min<size_t>(static_cast<size_t>(room), seq.prompt.size() - seq.prompt_done);
    const bool last = seq.prompt_done + n == seq.prompt.size();
    for (size_t i = 0; i < n; ++i) {
      const bool out = last && i + 1 == n;
      step_tokens_.push_back({seq.prompt[seq.prompt_done + i], static_cast<int32_t>(seq.n_past + i), seq.slot,
                              out ? (seq.greedy ? StepToken::kGreedy : StepToken::kSampled) : StepToken::kNone});
    }
    fed.push_back({&seq, n, last ? 1u : 0u, false});
    room -= static_cast<int64_t>(n);
  }
  // Generated tokens first, prompt tokens after: each takes its role's kernels (see the header).
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> next = leader_.step_batch(step_tokens_, n_decode, [&](size_t i, const float* logits) {
    // Entries map to sequences in order; find the one that owns token i.
    size_t at = 0;
    for (const Fed& f : fed) {
      if (i < at + f.tokens) {
        Sequence& seq = *f.seq;
        if (!seq.sampler) return int32_t{-1};
        if (!f.decode || !seq.speculate) return sample(seq, logits);
        // Speculating: the distribution, for the acceptance rule after the step.
        const auto& d = seq.sampler->distribution(logits);
        seq.p[i - at].assign(d.begin(), d.end());
        return int32_t{-1};
      }
      at += f.tokens;
    }
    return int32_t{-1};
  });
  const double step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // A step of generated tokens alone measures the pass by its width (prompt tiles would add theirs).
  const bool only_decodes = n_decode > 0 && static_cast<int64_t>(step_tokens_.size()) == n_decode;
  if (batch_drafting_ && only_decodes)
    batch_drafting_->record_step(static_cast<int>(decoding), static_cast<int>(n_decode), step_s);
  const bool solo = only_decodes && fed.size() == 1;
  {
    const auto& c = engine_.comm().stats();
    std::lock_guard lock(inbox_->mutex);
    inbox_->comm = c;
  }

  uint64_t drafted = 0, kept = 0, prompt_evaluated = 0;
  size_t out_i = 0;
  for (const Fed& f : fed) {
    Sequence& seq = *f.seq;
    const std::vector<int32_t> rows(next.begin() + static_cast<ptrdiff_t>(out_i),
                                    next.begin() + static_cast<ptrdiff_t>(out_i + f.rows));
    out_i += f.rows;
    if (!f.decode) {
      // This chunk's keys and values are in the slot now: a later request may reuse them.
      if (seq.slot >= 0) prompt_cache_.record(seq.slot, seq.prompt_done, seq.prompt.data() + seq.prompt_done, f.tokens);
      prompt_evaluated += f.tokens;
      seq.prompt_done += f.tokens;
      seq.n_past += static_cast<int64_t>(f.tokens);
    }
    if (f.rows == 0) continue;
    if (seq.cancelled) {
      finish(seq, FinishReason::cancelled);
      continue;
    }
    if (!seq.sample_error.empty()) {
      finish(seq, FinishReason::error, seq.sample_error);
      continue;
    }
    speculative::Verdict v{0, rows[0]};
    if (f.decode && seq.speculate) {
      v = seq.greedy ? speculative::accept_greedy(seq.draft.tokens, rows)
                     : speculative::accept_sampled(seq.draft, seq.p, *seq.sampler);
      // Its first drafts caught up its prompt first: their drafting alone tells a drafted token's
      // cost (as in decode_speculative).
      const double n_drafts = static_cast<double>(seq.draft.tokens.size());
      // Alone in the step, the sequence's own rule measures the pass (draft_for_step asks it
      // then); beside others, its acceptance rate only.
      double own_draft_s = seq.draft_s;
      if (!seq.drafted_before)
        own_draft_s = n_drafts >= 2 ? (seq.draft_s - seq.draft_catch_up_s) * n_drafts / (n_drafts - 1) : -1.0;
      seq.draft_length->record(static_cast<int>(seq.draft.tokens.size()), v.accepted, solo ? step_s : -1.0,
                               solo ? own_draft_s : -1.0);
      if (!seq.drafted_before && n_drafts >= 2)
        batch_drafting_->record_draft(static_cast<int>(decoding),
                                      seq.draft_catch_up_s < seq.draft_s
                                          ? (seq.draft_s - seq.draft_catch_up_s) / (n_drafts - 1)
                                          : seq.draft_s / n_drafts,
                                      -1);
      else if (n_drafts > 0 && seq.drafted_before && seq.steps_without_draft > 0)
        batch_drafting_->record_draft(static_cast<int>(decoding), -1, seq.draft_s);
      else if (n_drafts > 0 && seq.drafted_before)
        batch_drafting_->record_draft(static_cast<int>(decoding), seq.draft_s / n_drafts, -1);
      seq.drafted_before = seq.drafted_before || !seq.draft.tokens.empty();
      seq.steps_without_draft = seq.draft.tokens.empty() ? seq.steps_without_draft + 1 : 0;
      drafted += seq.draft.tokens.size();
      kept += static_cast<uint64_t>(v.accepted);
    }
    // The decode token and the kept drafts are in the KV cache now; the rest is overwritten later.
    if (f.decode) seq.n_past += 1 + v.accepted;
    bool alive = true;
    for (int i = 0; i < v.accepted && alive; ++i) alive = emit(seq, seq.draft.tokens[static_cast<size_t>(i)]);
    if (alive && emit(seq, v.next)) seq.pending = v.next;
  }
  std::erase_if(running_, [](const auto& s) { return s->done; });
  std::lock_guard lock(inbox_->mutex);
  inbox_->running = running_.size();
  inbox_->draft_tokens += drafted;
  inbox_->draft_accepted += kept;
  inbox_->prompt_tokens_evaluated += prompt_evaluated;
}

}  // namespace clusterctl::server
