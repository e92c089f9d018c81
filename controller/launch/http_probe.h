#pragma once
// The controller's own checks of a running cluster: GET /health (is every rank up?) and
// /metrics (tokens/s), through the one HTTP client (controller/http), as "no answer" or a reply.
#include <chrono>
#include <optional>
#include <string>

namespace clusterctl::launch {

struct HttpReply {
  int status = 0;
  std::string body;
};

// GET `path` from an "http://HOST:PORT" endpoint. nullopt when there is no answer in time
// (refused, unreachable, timed out); `why` then says which.
std::optional<HttpReply> http_get(const std::string& endpoint, const std::string& path,
                                  std::chrono::milliseconds timeout, const std::string& bearer_token = "",
                                  std::string* why = nullptr);

}  // namespace clusterctl::launch
