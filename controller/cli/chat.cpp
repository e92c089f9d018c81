// `clusterctl chat MODEL`: an interactive chat. Reads one user message per line from stdin,
// keeps the conversation and streams each answer: from the running cluster that serves MODEL,
// from --endpoint, or from the engine on this machine (worker/tools/local_chat.h). Works with a
// pipe as well as a terminal.
// Ctrl-C stops the current answer; a second Ctrl-C (or one at the prompt) exits.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "controller/cli/remote_target.h"
#include "controller/http/openai_stream.h"
#include "controller/hub/pull.h"
#include "worker/common/error.h"
#include "worker/tools/engine_flags.h"
#include "worker/tools/local_chat.h"

namespace clusterctl::cli {
namespace {

using Json = ChatBackend::Json;

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

bool interactive() { return isatty(STDIN_FILENO) != 0; }

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
  eo.model_path = hub::pull_if_named(model, stderr);
  eo.engine = engine_options(args);
  return open_local_chat(eo, g_interrupts);
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
                     "GGUF model file, a model on Hugging Face (ORG/NAME:QUANT, pulled first), or the model of a "
                     "running cluster (its id or file name)")("system", po::value<std::string>(),
                                                              "a system message that opens the conversation")(
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
