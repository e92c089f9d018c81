#pragma once
// TEST-ONLY GenerationService: not a model. It "generates" by streaming the words of the
// prompt back, one word per step with a delay, on its own scheduler thread with a
// bounded queue and a fixed number of slots, so the HTTP layer can be tested for real
// (sockets, streaming, queueing, cancellation) before the engine serves requests.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "worker/server/generation_service.h"

namespace clusterctl::server::testing {

struct WordStreamTestOptions {
  std::string model_id = "word-stream-test";
  std::optional<std::string> chat_template;  // none: the server's fallback format
  std::chrono::milliseconds step_delay{2};
  size_t slots = 4;        // requests "decoding" at once
  size_t max_queued = 16;  // waiting beyond the slots; more -> QueueFullError
};

class WordStreamTestService : public GenerationService {
 public:
  explicit WordStreamTestService(WordStreamTestOptions options = {});
  ~WordStreamTestService() override;

  const ModelInfo& model() const override { return model_; }
  std::shared_ptr<GenerationHandle> submit(GenerationRequest request, GenerationCallbacks callbacks) override;
  ServiceStats stats() const override;
  std::vector<ClusterNode> nodes() const override;

  // What tests look at.
  size_t cancelled_count() const { return cancelled_; }
  size_t finished_count() const { return finished_; }
  GenerationRequest last_request() const;

  // The words a prompt streams back, as pieces: "w1", " w2", " w3" ...
  static std::vector<std::string> pieces_of(const std::string& prompt);

 private:
  struct Job;
  void run();

  WordStreamTestOptions options_;
  ModelInfo model_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<std::shared_ptr<Job>> running_;
  GenerationRequest last_request_;
  bool stopping_ = false;
  std::atomic<size_t> cancelled_{0};
  std::atomic<size_t> finished_{0};
  std::thread scheduler_;
};

}  // namespace clusterctl::server::testing
