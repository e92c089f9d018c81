#include "tests/unit/server/server_test_word_service.h"

#include <sstream>

namespace clusterctl::server::testing {

struct WordStreamTestService::Job : GenerationHandle {
  std::vector<std::string> pieces;
  size_t next = 0;
  int max_tokens = 0;
  GenerationCallbacks callbacks;
  std::atomic<bool> cancelled{false};
  WordStreamTestService* owner = nullptr;
  void cancel() override {
    cancelled = true;
    std::lock_guard lock(owner->mutex_);
    owner->wake_.notify_all();
  }
};

WordStreamTestService::WordStreamTestService(WordStreamTestOptions options) : options_(std::move(options)) {
  model_.id = options_.model_id;
  model_.chat_template = options_.chat_template;
  model_.bos_token = "<s>";
  model_.eos_token = "</s>";
  model_.context_length = 4096;
  scheduler_ = std::thread([this] { run(); });
}

WordStreamTestService::~WordStreamTestService() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  scheduler_.join();
}

std::vector<std::string> WordStreamTestService::pieces_of(const std::string& prompt) {
  std::vector<std::string> pieces;
  std::istringstream in(prompt);
  std::string word;
  while (in >> word) pieces.push_back(pieces.empty() ? word : " " + word);
  return pieces;
}

std::shared_ptr<GenerationHandle> WordStreamTestService::submit(GenerationRequest request,
                                                                GenerationCallbacks callbacks) {
  auto job = std::make_shared<Job>();
  job->pieces = pieces_of(request.prompt);
  if (job->pieces.empty()) throw InvalidRequestError("the prompt has no words to stream back", "empty_prompt");
  job->max_tokens = request.max_tokens;
  job->callbacks = std::move(callbacks);
  job->owner = this;
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= options_.max_queued) {
      throw QueueFullError(
          "the request queue is full (" + std::to_string(options_.max_queued) + " waiting); retry in a moment", 1);
    }
    last_request_ = std::move(request);
    queue_.push_back(job);
  }
  wake_.notify_all();
  return job;
}

ServiceStats WordStreamTestService::stats() const {
  std::lock_guard lock(mutex_);
  ServiceStats s;
  s.queued = queue_.size();
  s.running = running_.size();
  return s;
}

std::vector<ClusterNode> WordStreamTestService::nodes() const {
  return {{0, "127.0.0.1", "rank 0 (API, test service)", "", 0, ""}};
}

GenerationRequest WordStreamTestService::last_request() const {
  std::lock_guard lock(mutex_);
  return last_request_;
}

void WordStreamTestService::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    while (running_.size() < options_.slots && !queue_.empty()) {
      running_.push_back(queue_.front());
      queue_.pop_front();
    }
    // Queued jobs cancelled before they got a slot finish too.
    std::vector<std::shared_ptr<Job>> cancelled_waiting;
    std::erase_if(queue_, [&](const std::shared_ptr<Job>& j) {
      if (!j->cancelled) return false;
      cancelled_waiting.push_back(j);
      return true;
    });
    // One "decode step": every running job emits its next word or finishes.
    struct Event {
      std::shared_ptr<Job> job;
      std::optional<FinishReason> finish;
    };
    std::vector<Event> events;
    for (auto& j : cancelled_waiting) events.push_back({j, FinishReason::cancelled});
    for (auto& j : running_) {
      if (j->cancelled)
        events.push_back({j, FinishReason::cancelled});
      else if (j->next >= j->pieces.size())
        events.push_back({j, FinishReason::stop});
      else if (static_cast<int>(j->next) >= j->max_tokens)
        events.push_back({j, FinishReason::length});
      else
        events.push_back({j, std::nullopt});
    }
    std::erase_if(running_, [](const std::shared_ptr<Job>& j) {
      return j->cancelled || j->next >= j->pieces.size() || static_cast<int>(j->next) >= j->max_tokens;
    });
    lock.unlock();
    for (auto& e : events) {
      Job& j = *e.job;
      if (!e.finish) {
        j.callbacks.on_token(j.pieces[j.next], static_cast<int32_t>(j.next));
        ++j.next;
        continue;
      }
      Usage usage{static_cast<int>(j.pieces.size()), static_cast<int>(j.next)};
      (*e.finish == FinishReason::cancelled ? cancelled_ : finished_)++;
      j.callbacks.on_done(*e.finish, usage, "");
    }
    lock.lock();
    if (running_.empty() && queue_.empty()) {
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    } else {
      wake_.wait_for(lock, options_.step_delay, [this] { return stopping_; });
    }
  }
  // Shutting down: every request still here is finished, as the interface promises.
  std::vector<std::shared_ptr<Job>> left(running_.begin(), running_.end());
  left.insert(left.end(), queue_.begin(), queue_.end());
  running_.clear();
  queue_.clear();
  lock.unlock();
  for (auto& j : left)
    j->callbacks.on_done(FinishReason::cancelled, Usage{static_cast<int>(j->pieces.size()), static_cast<int>(j->next)},
                         "");
}

}  // namespace clusterctl::server::testing
