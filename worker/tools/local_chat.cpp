// The local side of `clusterctl chat`: the same generation service and chat template code the
// HTTP server uses, on this machine's engine.
#include "worker/tools/local_chat.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "worker/chat/chat_template.h"
#include "worker/common/error.h"
#include "worker/server/openai_protocol.h"
#include "worker/server/stop_matcher.h"

namespace clusterctl::cli {
namespace {

using Clock = std::chrono::steady_clock;
using Json = ChatBackend::Json;

// The model's own template, or the documented fallback when it uses Jinja the interpreter lacks
// (as the HTTP server does, so the local chat sees the prompts a served model sees).
chat::ChatTemplate template_for(const server::ModelInfo& model) {
  try {
    return chat::ChatTemplate(model.chat_template, model.bos_token, model.eos_token);
  } catch (const chat::TemplateError& e) {
    std::fprintf(stderr, "warning: %s; the chat uses the fallback prompt format (docs/api.md)\n", e.what());
    return chat::ChatTemplate(std::nullopt, model.bos_token, model.eos_token);
  }
}

// This machine: the engine's generation service (one sequence at a time is all a chat needs).
class LocalChat : public ChatBackend {
 public:
  LocalChat(server::EngineServiceOptions options, const std::atomic<int>& interrupts)
      : service_(std::move(options)), template_(template_for(service_.model())), interrupts_(interrupts) {}
  std::string describe() const override { return "this machine, model " + service_.model().id; }

  Answer answer(const Json& messages, const ChatSettings& s) override {
    server::GenerationRequest req = request(messages, s);
    // The service calls back on its own thread; this thread prints, so Ctrl-C can cancel.
    struct Shared {
      std::mutex mu;
      std::condition_variable cv;
      std::string pending;
      int tokens = 0;
      std::optional<Clock::time_point> first_token;
      bool done = false;
      server::FinishReason reason = server::FinishReason::stop;
      std::string message;
    };
    auto shared = std::make_shared<Shared>();
    server::GenerationCallbacks cb;
    cb.on_token = [shared](std::string_view piece, int32_t id) {
      std::lock_guard lock(shared->mu);
      shared->pending.append(piece);
      if (id >= 0) ++shared->tokens;
      if (!shared->first_token && !piece.empty()) shared->first_token = Clock::now();
      shared->cv.notify_one();
    };
    cb.on_done = [shared](server::FinishReason reason, server::Usage, const std::string& message) {
      std::lock_guard lock(shared->mu);
      shared->done = true;
      shared->reason = reason;
      shared->message = message;
      shared->cv.notify_one();
    };
    server::StopMatcher stops(req.stop);
    const auto t0 = Clock::now();
    auto handle = service_.submit(std::move(req), std::move(cb));
    Answer a;
    bool cancelled = false;
    auto emit = [&](const std::string& text) {
      if (text.empty()) return;
      a.text += text;
      print_piece(text);
    };
    for (;;) {
      std::string piece;
      bool done = false;
      {
        std::unique_lock lock(shared->mu);
        shared->cv.wait_for(lock, std::chrono::milliseconds(50),
                            [&] { return shared->done || !shared->pending.empty(); });
        piece.swap(shared->pending);
        done = shared->done;
      }
      if (!stops.matched()) emit(stops.feed(piece));
      if (!cancelled && (stops.matched() || interrupts_.load() > 0)) {
        cancelled = true;
        handle->cancel();
      }
      if (done) break;
    }
    if (!stops.matched()) emit(stops.flush());
    a.total_s = std::chrono::duration<double>(Clock::now() - t0).count();
    a.tokens = shared->tokens;
    a.time_to_first_token_s =
        shared->first_token ? std::chrono::duration<double>(*shared->first_token - t0).count() : a.total_s;
    a.stopped = interrupts_.load() > 0;
    if (stops.matched()) {
      a.finish_reason = "stop";
    } else if (shared->reason == server::FinishReason::error) {
      throw Error("generation failed: " + shared->message);
    } else {
      a.finish_reason = server::finish_reason_name(shared->reason);
    }
    return a;
  }

 private:
  // The conversation through the model's chat template, with the template's own stop strings.
  server::GenerationRequest request(const Json& messages, const ChatSettings& s) const {
    server::GenerationRequest req;
    try {
      req.prompt = template_.render(messages, true);
    } catch (const chat::TemplateError& e) {
      throw Error(std::string("the model's chat template rejected the conversation: ") + e.what());
    }
    req.templated = true;
    req.max_tokens = s.max_tokens;
    req.sampling.temperature = s.temperature;
    req.sampling.top_p = s.top_p;
    req.sampling.seed = s.seed;
    req.stop = s.stop;
    for (const auto& implied : template_.implied_stop_strings()) req.stop.push_back(implied);
    return req;
  }

  server::EngineGenerationService service_;
  chat::ChatTemplate template_;
  const std::atomic<int>& interrupts_;
};

}  // namespace

void print_piece(std::string_view piece) {
  std::fwrite(piece.data(), 1, piece.size(), stdout);
  std::fflush(stdout);
}

std::unique_ptr<ChatBackend> open_local_chat(server::EngineServiceOptions options, const std::atomic<int>& interrupts) {
  options.scheduler.parallel = 1;
  options.scheduler.max_queued = 1;
  return std::make_unique<LocalChat>(std::move(options), interrupts);
}

}  // namespace clusterctl::cli
