// `clusterctl chat MODEL`: an interactive chat. Reads one user message per line from stdin,
// keeps the conversation and streams each answer: from the running cluster that serves MODEL,
// from --endpoint, or from the engine on this machine (the same generation service and chat
// template code the HTTP server uses). Works with a pipe as well as a terminal.
// Ctrl-C stops the current answer; a second Ctrl-C (or one at the prompt) exits.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "controller/cli/remote_target.h"
#include "controller/http/openai_stream.h"
#include "worker/chat/chat_template.h"
#include "worker/common/error.h"
#include "worker/server/engine_generation_service.h"
#include "worker/server/openai_protocol.h"
#include "worker/server/stop_matcher.h"
#include "worker/tools/engine_flags.h"

namespace clusterctl::cli {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

struct ChatSettings {
  int max_tokens = 512;
  float temperature = 0.8f;
  float top_p = 0.95f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
};

struct Answer {
  std::string text;
  int tokens = 0;
  double time_to_first_token_s = 0;
  double total_s = 0;
  std::string finish_reason;
  bool stopped = false;  // by Ctrl-C
};

// Ctrl-C handling shared with the signal handler: while an answer streams, the first Ctrl-C
// stops it (remote: shuts the socket; local: the waiting loop cancels the request).
std::atomic<bool> g_answering{false};
std::atomic<int> g_interrupts{0};
http::StreamCancel g_stream_cancel;

void on_sigint(int) {
  if (g_answering.load() && g_interrupts.fetch_add(1) == 0) {
    g_stream_cancel.cancel();
    return;
  }
  static const char bye[] = "\n";
  (void)!write(STDERR_FILENO, bye, sizeof bye - 1);
  _exit(130);
}

void print_piece(std::string_view piece) {
  std::fwrite(piece.data(), 1, piece.size(), stdout);
  std::fflush(stdout);
}

class ChatBackend {
 public:
  virtual ~ChatBackend() = default;
  virtual std::string describe() const = 0;
  // Streams the answer to `messages` to stdout.
  virtual Answer answer(const Json& messages, const ChatSettings& s) = 0;
};

// A server: /v1/chat/completions, streamed.
class RemoteChat : public ChatBackend {
 public:
  explicit RemoteChat(const RemoteTarget& target) : target_(target), client_(client_for(target)) {
    model_id_ = http::served_model_id(client_);
  }
  std::string describe() const override { return target_.description + ", model " + model_id_; }

  Answer answer(const Json& messages, const ChatSettings& s) override {
    nlohmann::json req;
    req["model"] = model_id_;
    req["messages"] = nlohmann::json::parse(messages.dump());
    req["max_tokens"] = s.max_tokens;
    req["temperature"] = s.temperature;
    req["top_p"] = s.top_p;
    if (s.seed) req["seed"] = *s.seed;
    if (!s.stop.empty()) req["stop"] = s.stop;
    http::StreamResult r =
        http::stream_completion(client_, http::ApiKind::chat_completions, req, print_piece, &g_stream_cancel);
    return {r.text, r.completion_tokens, r.time_to_first_token_s, r.total_s, r.finish_reason, r.cancelled};
  }

 private:
  RemoteTarget target_;
  http::HttpClient client_;
  std::string model_id_;
};

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
  explicit LocalChat(server::EngineServiceOptions options)
      : service_(std::move(options)), template_(template_for(service_.model())) {}
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
      if (!cancelled && (stops.matched() || g_interrupts.load() > 0)) {
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
    a.stopped = g_interrupts.load() > 0;
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
};

bool interactive() { return isatty(STDIN_FILENO) != 0; }

// A chat runs one sequence at a time: one KV-cache slot is all it needs. (The service's options
// move under `scheduler` with the continuous-batching scheduler; both shapes are served here
// until that lands everywhere.)
template <class Options>
void one_sequence(Options& o) {
  if constexpr (requires { o.scheduler.parallel; }) {
    o.scheduler.parallel = 1;
    o.scheduler.max_queued = 1;
  } else {
    o.max_queued = 1;
  }
}

ChatSettings chat_settings(const po::variables_map& args) {
  ChatSettings s;
  s.max_tokens = args["n-predict"].as<int>();
  if (s.max_tokens < 1) throw Error("-n must be at least 1");
  s.temperature = args["temp"].as<float>();
  s.top_p = args["top-p"].as<float>();
  if (args.count("seed")) s.seed = args["seed"].as<uint64_t>();
  if (args.count("stop")) s.stop = args["stop"].as<std::vector<std::string>>();
  return s;
}

// The running cluster that serves the model (or --endpoint), else the engine on this machine.
std::unique_ptr<ChatBackend> open_backend(const po::variables_map& args) {
  const std::string model = args["model"].as<std::string>();
  if (auto target = resolve_target(args, model)) return std::make_unique<RemoteChat>(*target);
  server::EngineServiceOptions eo;
  eo.model_path = model;
  eo.engine = engine_options(args);
  one_sequence(eo);
  return std::make_unique<LocalChat>(eo);
}

// One answer to the conversation so far; Ctrl-C during it stops only this answer.
Answer answer_turn(ChatBackend& backend, const Json& messages, const ChatSettings& s) {
  g_interrupts = 0;
  g_stream_cancel.reset();
  g_answering = true;
  Answer a;
  try {
    a = backend.answer(messages, s);
  } catch (...) {
    g_answering = false;
    throw;
  }
  g_answering = false;
  return a;
}

void print_answer_end(const Answer& a, bool quiet) {
  std::fputs("\n", stdout);
  std::fflush(stdout);
  if (a.stopped) {
    std::fprintf(stderr, "[stopped]\n");
  } else if (!quiet) {
    const double gen_s = a.total_s - a.time_to_first_token_s;
    std::fprintf(stderr, "[%d tokens, %.1f tok/s, first token after %.2f s, finish: %s]\n", a.tokens,
                 a.tokens > 1 && gen_s > 0 ? (a.tokens - 1) / gen_s : 0.0, a.time_to_first_token_s,
                 a.finish_reason.c_str());
  }
}

}  // namespace

int chat_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>()->required(),
                     "GGUF model file, or the model of a running cluster (its id or file name)")(
      "system", po::value<std::string>(), "a system message that opens the conversation")(
      "n-predict,n", po::value<int>()->default_value(512), "tokens per answer at most")(
      "temp", po::value<float>()->default_value(0.8f), "temperature (0: greedy)")(
      "top-p", po::value<float>()->default_value(0.95f), "keep the smallest set with this total probability (1: off)")(
      "seed,s", po::value<uint64_t>(), "random seed (default: random)")(
      "stop", po::value<std::vector<std::string>>()->composing(), "end an answer at this text (repeatable)")(
      "quiet,q", po::bool_switch(), "print only the answers (no banner, no per-answer speed)");
  add_engine_flags(opts);
  add_target_flags(opts);
  po::positional_options_description pos;
  pos.add("model", 1);
  auto vm = parse_options(argc, argv,
                          "clusterctl chat MODEL [--system TEXT] [--temp T] [--local | --endpoint URL] [options]\n"
                          "One message per line on stdin; /exit or end of input ends the chat. Ctrl-C stops an\n"
                          "answer, a second Ctrl-C exits. Talks to the running cluster that serves MODEL (see\n"
                          "`clusterctl status`), else runs MODEL (a GGUF file) on this machine.",
                          opts, pos);
  if (!vm) return 0;
  const auto& args = *vm;
  const ChatSettings s = chat_settings(args);
  const bool quiet = args["quiet"].as<bool>();
  std::unique_ptr<ChatBackend> backend = open_backend(args);

  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);

  const bool tty = interactive();
  if (!quiet) {
    std::fprintf(stderr, "chat with %s%s\n", backend->describe().c_str(),
                 tty ? " (/exit or Ctrl-D ends; Ctrl-C stops an answer)" : "");
  }
  Json messages = Json::array();
  if (args.count("system")) messages.push_back({{"role", "system"}, {"content", args["system"].as<std::string>()}});
  std::string line;
  for (;;) {
    if (tty) {
      std::fputs("> ", stderr);
      std::fflush(stderr);
    }
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == "/exit" || line == "/quit") break;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    const Answer a = answer_turn(*backend, messages, s);
    // A stopped answer stays in the conversation as far as it got, as in the web chat.
    messages.push_back({{"role", "assistant"}, {"content", a.text}});
    print_answer_end(a, quiet);
  }
  return 0;
}

}  // namespace clusterctl::cli
