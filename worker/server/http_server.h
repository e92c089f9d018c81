#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "worker/server/generation_service.h"
#include "worker/server/openai_protocol.h"

namespace clusterctl::server {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless the user asks for more
  uint16_t port = 8080;            // 0 = any free port (see HttpServer::port())
  // When set, every request except GET / (the static chat page, which holds no data)
  // needs "Authorization: Bearer <token>".
  std::optional<std::string> bearer_token;
  // A tokenless server on loopback answers only requests whose Host names the loopback address
  // (or one of allowed_hosts) and whose Origin, if any, is its own or in cors_origins (DNS
  // rebinding and cross-site requests). false turns that guard off.
  bool loopback_guard = true;
  std::vector<std::string> allowed_hosts;
  // Origins of browser pages allowed to call the API (CORS; exact "scheme://host[:port]", "*" = any).
  std::vector<std::string> cors_origins;
  bool health_open = false;  // GET /health without the token (for probes)
  size_t max_body_bytes = 1 << 20;
  ProtocolLimits limits;
  std::chrono::seconds idle_timeout{60};  // keep-alive connections with no request
  int io_threads = 1;                     // generation runs on the service's thread
};

// The OpenAI-compatible HTTP API, metrics and web chat page of rank 0 (Boost.Beast).
//   POST /v1/chat/completions, POST /v1/completions   (stream or not)
//   GET  /v1/models, /health, /metrics, /v1/cluster, /
class HttpServer {
 public:
  HttpServer(ServerOptions options, GenerationService& service);
  ~HttpServer();  // stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving on background threads. Throws clusterctl::Error naming
  // the address when it cannot listen (port in use, address not local ...).
  void start();
  uint16_t port() const;  // the bound port, after start()
  // Stops accepting, closes connections (cancelling their requests) and joins threads.
  void stop();
  // Blocks until stop() is called from another thread (or a signal handler's thread).
  void wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clusterctl::server
