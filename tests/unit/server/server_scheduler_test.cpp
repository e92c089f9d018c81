// The continuous-batching scheduler on the real engine (stories260K, world size 1), without HTTP:
// sequences submitted together each get the tokens they get alone; the queue limit refuses with
// QueueFullError; cancel() ends a running sequence at once and its slot serves the next request.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>

#include "tests/unit/shared_data.h"
#include "worker/server/engine_generation_service.h"

namespace clusterctl::server {
namespace {

struct Outcome {
  Usage usage;
  std::vector<int32_t> ids;
  FinishReason reason = FinishReason::error;
  std::string message;
};

// Collects one request's tokens; wait() blocks until on_done.
class Collector {
 public:
  GenerationCallbacks callbacks() {
    return {[this](std::string_view, int32_t id) {
              std::lock_guard lock(mutex_);
              if (id >= 0) outcome_.ids.push_back(id);
              first_token_.notify_all();
            },
            [this](FinishReason reason, Usage usage, const std::string& message) {
              std::lock_guard lock(mutex_);
              outcome_.usage = usage;
              outcome_.reason = reason;
              outcome_.message = message;
              done_ = true;
              first_token_.notify_all();
            },
            {}};
  }
  Outcome wait() {
    std::unique_lock lock(mutex_);
    EXPECT_TRUE(first_token_.wait_for(lock, std::chrono::seconds(60), [&] { return done_; }))
        << "request never finished";
    return outcome_;
  }
  bool wait_first_token() {
    std::unique_lock lock(mutex_);
    return first_token_.wait_for(lock, std::chrono::seconds(60), [&] { return !outcome_.ids.empty() || done_; });
  }
  bool wait_tokens(size_t n) {
    std::unique_lock lock(mutex_);
    return first_token_.wait_for(lock, std::chrono::seconds(60), [&] { return outcome_.ids.size() >= n || done_; });
  }
  bool done() {
    std::lock_guard lock(mutex_);
    return done_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable first_token_;
  Outcome outcome_;
  bool done_ = false;
};

GenerationRequest greedy(const std::string& prompt, int max_tokens) {
  GenerationRequest r;
  r.prompt = prompt;
  r.sampling.temperature = 0;
  r.max_tokens = max_tokens;
  return r;
}

EngineServiceOptions options(const std::string& model, int64_t parallel, size_t max_queued) {
  EngineServiceOptions o;
  o.model_path = model;
  o.engine.threads = 1;
  o.engine.n_ctx = 256;
  o.scheduler.parallel = parallel;
  o.scheduler.max_queued = max_queued;
  return o;
}

const std::vector<std::pair<std::string, int>> kRequests = {
    {"Once upon a time", 40}, {"Tom had a dog", 12}, {"The sun was hot", 64}, {"Lily and Ben", 25},
    {"A little bird", 7},     {"One day", 50},       {"The big tree", 33},    {"Mom said", 18}};

TEST(BatchScheduler, SequencesTogetherGetTheirTokensFromRunningAlone) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  EngineGenerationService service(options(model, 4, 32));
  std::vector<Outcome> alone;
  for (const auto& [prompt, n] : kRequests) {
    Collector c;
    service.submit(greedy(prompt, n), c.callbacks());
    alone.push_back(c.wait());
    ASSERT_NE(alone.back().reason, FinishReason::error) << alone.back().message;
    ASSERT_FALSE(alone.back().ids.empty());
  }
  // Eight requests on four slots: some wait, then join sequences already half-way through.
  std::vector<std::unique_ptr<Collector>> together;
  for (const auto& [prompt, n] : kRequests) {
    together.push_back(std::make_unique<Collector>());
    service.submit(greedy(prompt, n), together.back()->callbacks());
  }
  for (size_t i = 0; i < kRequests.size(); ++i) {
    const Outcome got = together[i]->wait();
    EXPECT_EQ(got.ids, alone[i].ids) << "request " << i << " (" << kRequests[i].first << ")";
    EXPECT_EQ(got.reason, alone[i].reason) << "request " << i;
  }
}

TEST(BatchScheduler, QueueLimitRefusesAndCancelFreesTheSlot) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  EngineGenerationService service(options(model, 1, 1));
  // One slot: a long request runs, one more may wait, the third is refused.
  Collector running, waiting, refused;
  auto handle = service.submit(greedy("Once upon a time", 200), running.callbacks());
  ASSERT_TRUE(running.wait_first_token());
  service.submit(greedy("Tom had a dog", 8), waiting.callbacks());
  EXPECT_THROW(service.submit(greedy("The sun was hot", 8), refused.callbacks()), QueueFullError);
  EXPECT_EQ(service.stats().queued, 1u);
  EXPECT_FALSE(waiting.done());
  // Cancelling the running one ends it as cancelled and lets the waiting one through.
  handle->cancel();
  const Outcome first = running.wait();
  EXPECT_EQ(first.reason, FinishReason::cancelled);
  EXPECT_LT(first.ids.size(), 200u);
  const Outcome second = waiting.wait();
  EXPECT_NE(second.reason, FinishReason::error) << second.message;
  EXPECT_FALSE(second.ids.empty());
  EXPECT_FALSE(refused.done()) << "a refused request must get no callbacks";
}

// Every sampling value the API accepts (docs/api.md's range table) is served, and the scheduler
// keeps serving after it: top_p 0 once made the sampler throw inside the scheduler loop, which
// failed every request and left the service refusing all later ones.
TEST(BatchScheduler, SamplingAtTheDocumentedBoundsIsServedAndTheNextRequestToo) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  EngineGenerationService service(options(model, 2, 4));
  Collector greedy_alone;
  service.submit(greedy("Once upon a time", 8), greedy_alone.callbacks());
  const Outcome reference = greedy_alone.wait();
  ASSERT_NE(reference.reason, FinishReason::error) << reference.message;
  for (float temperature : {0.0f, 1e-30f, 1.0f, 2.0f}) {
    for (float top_p : {0.0f, 1e-30f, 0.5f, 1.0f}) {
      GenerationRequest r = greedy("Once upon a time", 8);
      r.sampling.temperature = temperature;
      r.sampling.top_p = top_p;
      r.sampling.seed = 18446744073709551615ull;
      Collector c;
      service.submit(r, c.callbacks());
      const Outcome got = c.wait();
      EXPECT_NE(got.reason, FinishReason::error)
          << "temperature " << temperature << " top_p " << top_p << ": " << got.message;
      if (temperature == 0.0f || top_p == 0.0f) {
        EXPECT_EQ(got.ids, reference.ids) << "temperature " << temperature << " top_p " << top_p << " is greedy";
      }
      Collector next;
      ASSERT_NO_THROW(service.submit(greedy("Once upon a time", 8), next.callbacks()));
      EXPECT_EQ(next.wait().ids, reference.ids);
    }
  }
}

}  // namespace
}  // namespace clusterctl::server

namespace clusterctl::server {
namespace {

// The prompt cache (prompt_cache.h) after a request cancelled half-way through its prompt: the
// chunks it completed are reused, and the answer is still exactly a whole prefill's.
TEST(BatchScheduler, ACancelDuringThePrefillLeavesAReusablePrefixAndTheSameAnswer) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  std::string prompt;
  for (int i = 0; i < 6; ++i) prompt += "Lily saw a big red ball in the park and ran to get it. ";
  GenerationRequest whole = greedy(prompt, 12);
  whole.cache_prompt = false;
  Outcome expected;
  {
    EngineGenerationService fresh(options(model, 2, 8));
    Collector c;
    fresh.submit(whole, c.callbacks());
    expected = c.wait();
    ASSERT_EQ(expected.usage.cached_tokens, 0);
  }
  auto o = options(model, 2, 8);
  o.scheduler.step_tokens = 8;  // each step: the running sequence's token and 7 prompt tokens
  EngineGenerationService service(o);
  // The running sequence cancels the other one from its own token callback (the scheduler's
  // thread, between two steps), a few steps into that one's prompt, whatever the machine's load.
  std::mutex mutex;
  std::shared_ptr<GenerationHandle> victim;
  int after_submit = 0;
  Collector running, cancelled;
  GenerationCallbacks busy = running.callbacks();
  busy.on_token = [&, inner = busy.on_token](std::string_view text, int32_t id) {
    inner(text, id);
    std::lock_guard lock(mutex);
    if (victim && ++after_submit == 4) victim->cancel();
  };
  auto keep_busy = service.submit(greedy("Once upon a time", 200), busy);
  ASSERT_TRUE(running.wait_first_token());
  {
    std::lock_guard lock(mutex);
    victim = service.submit(greedy(prompt, 12), cancelled.callbacks());
  }
  const Outcome cut = cancelled.wait();
  EXPECT_EQ(cut.reason, FinishReason::cancelled);
  EXPECT_TRUE(cut.ids.empty()) << "it was cancelled after its prompt";
  keep_busy->cancel();
  running.wait();
  Collector again;
  service.submit(greedy(prompt, 12), again.callbacks());
  const Outcome got = again.wait();
  EXPECT_EQ(got.ids, expected.ids);
  EXPECT_GT(got.usage.cached_tokens, 0) << "the completed chunks were not reused";
  EXPECT_LT(got.usage.cached_tokens, got.usage.prompt_tokens - 1) << "the cancel came after the whole prompt";
}

}  // namespace
}  // namespace clusterctl::server
