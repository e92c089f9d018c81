#include "worker/server/engine_generation_service.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "collectives/communicator.h"
#include "worker/gguf/gguf_file.h"
#include "worker/tokenizer/tokenizer.h"

namespace clusterctl::server {

ModelInfo describe_model(const gguf::GgufFile& file, const tokenizer::Tokenizer& tokenizer,
                         const std::string& model_path, const std::string& model_id, int64_t n_ctx) {
  ModelInfo info;
  info.id = model_id.empty() ? std::filesystem::path(model_path).stem().string() : model_id;
  info.chat_template = file.get_string("tokenizer.chat_template");
  const auto& vocab = tokenizer.vocab();
  if (vocab.bos() >= 0) info.bos_token = vocab.text(vocab.bos());
  if (vocab.eos() >= 0) info.eos_token = vocab.text(vocab.eos());
  info.context_length = static_cast<int>(n_ctx);
  info.architecture = file.architecture();
  info.n_vocab = static_cast<int>(vocab.size());
  return info;
}

namespace {

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

}  // namespace

EngineGenerationService::EngineGenerationService(EngineServiceOptions options) {
  file_ = std::make_unique<gguf::GgufFile>(options.model_path);
  tokenizer_ = tokenizer::Tokenizer::from_gguf(*file_);
  comm_ = collectives::make_local_communicator();
  options.engine.n_slots = kv_slots_for(options.scheduler.parallel);
  engine_ = std::make_unique<model::Engine>(*file_, *comm_, options.engine);
  leader_ = std::make_unique<parallel::StepLeader>(*engine_);
  scheduler_ = std::make_unique<BatchScheduler>(
      *engine_, *leader_, *tokenizer_,
      describe_model(*file_, *tokenizer_, options.model_path, options.model_id, engine_->n_ctx()),
      std::vector<ClusterNode>{
          {0, host_name(), "rank 0 (API and model)", "the whole model", engine_->model().weights.bytes_per_token, ""}},
      options.scheduler);
  thread_ = std::thread([this] {
    try {
      scheduler_->run();
    } catch (const std::exception& e) {
      // Every request was failed with the message; later ones are refused (the scheduler stopped).
      std::fprintf(stderr, "error: the engine failed: %s\n", e.what());
    }
  });
}

EngineGenerationService::~EngineGenerationService() {
  scheduler_->stop();
  thread_.join();
}

}  // namespace clusterctl::server
