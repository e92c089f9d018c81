#pragma once
// GenerationService on the inference engine of this machine (world size 1).
// Interim scheduler: ONE sequence at a time, in arrival order, through model::generate;
// the others wait in a bounded queue. The continuous-batching scheduler (several
// sequences per forward step, chunked prefill, one KV slot each) replaces it behind the
// same interface.
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "worker/model/engine.h"
#include "worker/server/generation_service.h"

namespace clusterctl::gguf {
class GgufFile;
}
namespace clusterctl::tokenizer {
class Tokenizer;
}
namespace clusterctl::collectives {
class Communicator;
}

namespace clusterctl::server {

struct EngineServiceOptions {
  std::string model_path;
  std::string model_id;  // empty: the file name without ".gguf"
  model::EngineOptions engine;
  size_t max_queued = 32;
};

class EngineGenerationService : public GenerationService {
 public:
  // Loads the model; throws clusterctl::Error naming the file and the cause.
  explicit EngineGenerationService(EngineServiceOptions options);
  ~EngineGenerationService() override;

  const ModelInfo& model() const override { return info_; }
  std::shared_ptr<GenerationHandle> submit(GenerationRequest request, GenerationCallbacks callbacks) override;
  ServiceStats stats() const override;
  std::vector<ClusterNode> nodes() const override;

 private:
  struct Job;
  void run();
  void serve(Job& job);

  EngineServiceOptions options_;
  std::unique_ptr<gguf::GgufFile> file_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<collectives::Communicator> comm_;
  std::unique_ptr<model::Engine> engine_;
  ModelInfo info_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  std::thread scheduler_;
};

}  // namespace clusterctl::server
