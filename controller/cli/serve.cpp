// `clusterctl serve MODEL.gguf`: the OpenAI-compatible HTTP API, metrics and web chat on
// this machine, generating with the engine (one sequence at a time for now; see
// worker/server/engine_generation_service.h).
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "controller/cli/engine_flags.h"
#include "worker/common/error.h"
#include "worker/server/engine_generation_service.h"
#include "worker/server/http_server.h"

namespace clusterctl::cli {

namespace {

std::string read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read the token file '" + path + "': check the path and its permissions");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) token.erase(0, 1);
  if (token.empty()) throw Error("the token file '" + path + "' is empty: put the API token in it");
  if (token.find_first_of(" \t\r\n") != std::string::npos) {
    throw Error("the token file '" + path + "' holds more than one word: put only the API token in it");
  }
  return token;
}

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

int serve_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>()->required(), "GGUF model file")(
      "host", po::value<std::string>()->default_value("127.0.0.1"), "address to listen on (0.0.0.0: every interface)")(
      "port", po::value<int>()->default_value(8080), "TCP port")(
      "token-file", po::value<std::string>(), "file holding the API token every request must send as a bearer token")(
      "model-id", po::value<std::string>(), "the model name clients use (default: the file name without .gguf)")(
      "max-tokens", po::value<int>()->default_value(4096), "largest max_tokens a request may ask for")(
      "max-body", po::value<size_t>()->default_value(1 << 20), "largest request body in bytes")(
      "queue", po::value<size_t>()->default_value(32), "requests that may wait; more get 429");
  add_engine_flags(opts);
  po::positional_options_description pos;
  pos.add("model", 1);
  auto vm = parse_options(argc, argv, "clusterctl serve MODEL.gguf [--host 127.0.0.1] [--port 8080] [--token-file F]",
                          opts, pos);
  if (!vm) return 0;

  server::ServerOptions so;
  so.host = (*vm)["host"].as<std::string>();
  const int port = (*vm)["port"].as<int>();
  if (port < 0 || port > 65535) throw Error("--port must be between 0 and 65535");
  so.port = static_cast<uint16_t>(port);
  if (vm->count("token-file")) so.bearer_token = read_token_file((*vm)["token-file"].as<std::string>());
  so.max_body_bytes = (*vm)["max-body"].as<size_t>();
  so.limits.max_tokens_limit = (*vm)["max-tokens"].as<int>();
  if (so.limits.max_tokens_limit < 1) throw Error("--max-tokens must be at least 1");
  so.limits.default_chat_max_tokens = std::min(so.limits.default_chat_max_tokens, so.limits.max_tokens_limit);
  if (!is_loopback(so.host) && !so.bearer_token) {
    std::fprintf(stderr, "warning: listening on %s without --token-file: anyone who can reach this address can use the model\n",
                 so.host.c_str());
  }

  server::EngineServiceOptions eo;
  eo.model_path = (*vm)["model"].as<std::string>();
  if (vm->count("model-id")) eo.model_id = (*vm)["model-id"].as<std::string>();
  eo.engine = engine_options(*vm);
  eo.max_queued = (*vm)["queue"].as<size_t>();

  // Block the stop signals in every thread the server starts; this thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::EngineGenerationService service(eo);
  server::HttpServer http(so, service);
  http.start();
  std::printf("serving %s on http://%s:%u/ (OpenAI API under /v1; Ctrl-C stops)\n", service.model().id.c_str(),
              so.host.c_str(), static_cast<unsigned>(http.port()));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "stopping\n");
  http.stop();
  return 0;
}

}  // namespace clusterctl::cli
