#include "worker/tools/serve_flags.h"

#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "worker/common/error.h"
#include "worker/common/token_file.h"
#include "worker/tools/engine_flags.h"

namespace clusterctl::cli {
namespace {

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

void add_serve_flags(po::options_description& opts) {
  opts.add_options()("host", po::value<std::string>()->default_value("127.0.0.1"),
                     "address to listen on (0.0.0.0: every interface)")("port", po::value<int>()->default_value(8080),
                                                                        "TCP port (0: any free port)")(
      "token-file", po::value<std::string>(), "file holding the API token every request must send as a bearer token")(
      "model-id", po::value<std::string>(), "the model name clients use (default: the file name without .gguf)")(
      "max-tokens", po::value<int>()->default_value(4096), "largest max_tokens a request may ask for")(
      "max-body", po::value<size_t>()->default_value(1 << 20), "largest request body in bytes")(
      "parallel", po::value<int64_t>()->default_value(4), "sequences decoding at once (one KV-cache slot each)")(
      "max-queue", po::value<size_t>()->default_value(32), "requests that may wait for a slot; more get 429")(
      "cors-origin", po::value<std::vector<std::string>>()->composing(),
      "a web page origin (https://host[:port], or *) allowed to call the API from a browser; repeatable")(
      "allowed-host", po::value<std::vector<std::string>>()->composing(),
      "another Host name a tokenless loopback server answers (e.g. a local proxy's); repeatable")(
      "health-open", po::bool_switch(), "GET /health answers without the token (for load balancer probes)");
  add_draft_flags(opts);
}

server::ServerOptions server_options(const po::variables_map& vm) {
  server::ServerOptions so;
  so.host = vm["host"].as<std::string>();
  const int port = vm["port"].as<int>();
  if (port < 0 || port > 65535) throw Error("--port must be between 0 and 65535");
  so.port = static_cast<uint16_t>(port);
  if (vm.count("token-file")) so.bearer_token = read_token_file(vm["token-file"].as<std::string>());
  so.max_body_bytes = vm["max-body"].as<size_t>();
  if (vm.count("cors-origin")) so.cors_origins = vm["cors-origin"].as<std::vector<std::string>>();
  for (const auto& origin : so.cors_origins) {
    if (origin != "*" && origin.rfind("http://", 0) != 0 && origin.rfind("https://", 0) != 0) {
      throw Error("--cors-origin '" + origin +
                  "' must be an origin like https://app.example or http://localhost:3000 (or *)");
    }
  }
  if (vm.count("allowed-host")) so.allowed_hosts = vm["allowed-host"].as<std::vector<std::string>>();
  so.health_open = vm.count("health-open") && vm["health-open"].as<bool>();
  so.limits.max_tokens_limit = vm["max-tokens"].as<int>();
  if (so.limits.max_tokens_limit < 1) throw Error("--max-tokens must be at least 1");
  so.limits.default_chat_max_tokens = std::min(so.limits.default_chat_max_tokens, so.limits.max_tokens_limit);
  if (!is_loopback(so.host) && !so.bearer_token) {
    std::fprintf(stderr,
                 "warning: listening on %s without --token-file: anyone who can reach this address can use the model\n",
                 so.host.c_str());
  }
  return so;
}

server::SchedulerOptions scheduler_options(const po::variables_map& vm) {
  server::SchedulerOptions o;
  o.parallel = vm["parallel"].as<int64_t>();
  if (o.parallel < 1 || o.parallel > 256) throw Error("--parallel must be between 1 and 256");
  o.max_queued = vm["max-queue"].as<size_t>();
  const DraftFlags d = draft_flags(vm);
  o.draft = d.spec;
  o.draft_min = d.min;
  o.draft_max = d.max;
  return o;
}

std::string model_id_flag(const po::variables_map& vm) {
  return vm.count("model-id") ? vm["model-id"].as<std::string>() : std::string();
}

}  // namespace clusterctl::cli
