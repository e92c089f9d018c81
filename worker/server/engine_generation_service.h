#pragma once
// The API's GenerationService on this machine alone (world size 1): loads the model and runs the
// continuous-batching scheduler (batch_scheduler.h) on a thread of its own. A tensor-parallel job
// (clusterctl-worker --serve) runs the same scheduler on rank 0's main thread instead.
#include <memory>
#include <string>
#include <thread>

#include "worker/model/engine.h"
#include "worker/server/batch_scheduler.h"
#include "worker/server/generation_service.h"

namespace clusterctl::gguf {
class GgufFile;
}
namespace clusterctl::collectives {
class Communicator;
}

namespace clusterctl::server {

// What the API tells clients about a model: id (the file name without .gguf unless `model_id`
// is set), chat template, BOS/EOS text, context length.
ModelInfo describe_model(const gguf::GgufFile& file, const tokenizer::Tokenizer& tokenizer,
                         const std::string& model_path, const std::string& model_id, int64_t n_ctx);

struct EngineServiceOptions {
  std::string model_path;
  std::string model_id;         // empty: the file name without ".gguf"
  model::EngineOptions engine;  // n_slots is set from scheduler.parallel
  SchedulerOptions scheduler;
};

class EngineGenerationService : public GenerationService {
 public:
  // Loads the model; throws clusterctl::Error naming the file and the cause.
  explicit EngineGenerationService(EngineServiceOptions options);
  ~EngineGenerationService() override;  // cancels what is queued or running

  const ModelInfo& model() const override { return scheduler_->model(); }
  std::shared_ptr<GenerationHandle> submit(GenerationRequest request, GenerationCallbacks callbacks) override {
    return scheduler_->submit(std::move(request), std::move(callbacks));
  }
  ServiceStats stats() const override { return scheduler_->stats(); }
  std::vector<ClusterNode> nodes() const override { return scheduler_->nodes(); }
  ClusterLoad load() const override { return scheduler_->load(); }
  std::vector<int32_t> tokenize(const std::string& text, bool add_special, bool parse_special) const override {
    return scheduler_->tokenize(text, add_special, parse_special);
  }
  std::string token_text(int32_t id) const override { return scheduler_->token_text(id); }
  std::string detokenize(const std::vector<int32_t>& ids) const override { return scheduler_->detokenize(ids); }

 private:
  std::unique_ptr<gguf::GgufFile> file_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<collectives::Communicator> comm_;
  std::unique_ptr<model::Engine> engine_;
  std::unique_ptr<parallel::StepLeader> leader_;
  std::unique_ptr<BatchScheduler> scheduler_;
  std::thread thread_;
};

}  // namespace clusterctl::server
