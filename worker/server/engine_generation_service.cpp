#include "worker/server/engine_generation_service.h"

#include <atomic>
#include <filesystem>
#include <random>

#include "collectives/communicator.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/generate.h"
#include "worker/sampling/sampler.h"
#include "worker/tokenizer/stream_decoder.h"
#include "worker/tokenizer/tokenizer.h"

namespace clusterctl::server {

struct EngineGenerationService::Job : GenerationHandle {
  GenerationRequest request;
  std::vector<int32_t> prompt;
  GenerationCallbacks callbacks;
  std::atomic<bool> cancelled{false};
  void cancel() override { cancelled = true; }  // checked between tokens by the decode loop
};

EngineGenerationService::EngineGenerationService(EngineServiceOptions options) : options_(std::move(options)) {
  file_ = std::make_unique<gguf::GgufFile>(options_.model_path);
  tokenizer_ = tokenizer::Tokenizer::from_gguf(*file_);
  comm_ = collectives::make_local_communicator();
  engine_ = std::make_unique<model::Engine>(*file_, *comm_, options_.engine);

  info_.id = options_.model_id.empty() ? std::filesystem::path(options_.model_path).stem().string() : options_.model_id;
  info_.chat_template = file_->get_string("tokenizer.chat_template");
  const auto& vocab = tokenizer_->vocab();
  if (vocab.bos() >= 0) info_.bos_token = vocab.text(vocab.bos());
  if (vocab.eos() >= 0) info_.eos_token = vocab.text(vocab.eos());
  info_.context_length = static_cast<int>(engine_->n_ctx());
  scheduler_ = std::thread([this] { run(); });
}

EngineGenerationService::~EngineGenerationService() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& job : queue_) job->cancelled = true;
  }
  wake_.notify_all();
  scheduler_.join();
}

std::shared_ptr<GenerationHandle> EngineGenerationService::submit(GenerationRequest request, GenerationCallbacks callbacks) {
  auto job = std::make_shared<Job>();
  // Chat prompts carry the template's BOS and control-token text; plain prompts are user text.
  job->prompt = request.templated ? tokenizer_->tokenize(request.prompt, false, true)
                                  : tokenizer_->tokenize(request.prompt, true, false);
  if (job->prompt.empty()) throw InvalidRequestError("the prompt gives no tokens", "empty_prompt");
  if (static_cast<int64_t>(job->prompt.size()) >= engine_->n_ctx()) {
    throw InvalidRequestError("the prompt has " + std::to_string(job->prompt.size()) + " tokens but the context holds " +
                                  std::to_string(engine_->n_ctx()) + "; shorten it (or restart the server with a larger --ctx)",
                              "context_length_exceeded");
  }
  job->request = std::move(request);
  job->callbacks = std::move(callbacks);
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= options_.max_queued) {
      throw QueueFullError("the request queue is full (" + std::to_string(options_.max_queued) +
                               " waiting); this server decodes one sequence at a time",
                           2);
    }
    queue_.push_back(job);
  }
  wake_.notify_all();
  return job;
}

ServiceStats EngineGenerationService::stats() const {
  std::lock_guard lock(mutex_);
  ServiceStats s;
  s.queued = queue_.size();
  s.running = busy_ ? 1 : 0;
  return s;
}

std::vector<ClusterNode> EngineGenerationService::nodes() const { return {{0, "localhost", "rank 0 (API and model)"}}; }

void EngineGenerationService::run() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      job = queue_.front();
      queue_.pop_front();
      busy_ = true;
    }
    serve(*job);
    std::lock_guard lock(mutex_);
    busy_ = false;
  }
}

void EngineGenerationService::serve(Job& job) {
  Usage usage{static_cast<int>(job.prompt.size()), 0};
  if (job.cancelled) return job.callbacks.on_done(FinishReason::cancelled, usage, "");
  const GenerationRequest& r = job.request;
  // OpenAI semantics: temperature and nucleus sampling only (no top-k/min-p cut).
  sampling::SamplerParams sp;
  sp.temperature = r.sampling.temperature;
  sp.top_p = r.sampling.top_p;
  sp.top_k = 0;
  sp.min_p = 0;
  sp.seed = r.sampling.seed ? *r.sampling.seed : std::random_device{}();
  sampling::Sampler sampler(engine_->hparams().n_vocab, sp);

  model::GenerateRequest req;
  req.prompt = job.prompt;
  req.max_tokens = r.max_tokens;
  for (auto id : {tokenizer_->vocab().eos(), tokenizer_->vocab().eot()}) {
    if (id >= 0) req.stop_tokens.push_back(id);
  }
  const int64_t budget = std::min<int64_t>(r.max_tokens, engine_->n_ctx() - static_cast<int64_t>(job.prompt.size()));
  tokenizer::StreamDecoder decoder(*tokenizer_);
  try {
    model::generate(*engine_, sampler, req, [&](int32_t id) {
      ++usage.completion_tokens;
      job.callbacks.on_token(decoder.push(id), id);
      return !job.cancelled.load();
    });
    std::string rest = decoder.finish();
    if (!rest.empty()) job.callbacks.on_token(rest, -1);
  } catch (const std::exception& e) {
    return job.callbacks.on_done(FinishReason::error, usage, e.what());
  }
  FinishReason reason = job.cancelled ? FinishReason::cancelled
                        : usage.completion_tokens >= budget ? FinishReason::length
                                                            : FinishReason::stop;
  job.callbacks.on_done(reason, usage, "");
}

}  // namespace clusterctl::server
