#pragma once
// A small blocking HTTP/1.1 client (Boost.Beast) for OpenAI-compatible servers: plain
// requests and streamed (server-sent events) responses. One connection per request.
// Used by `clusterctl run`/`chat` against a cluster and by `clusterctl bench --serve`.
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "controller/http/url.h"
#include "worker/common/error.h"
#include "worker/common/token_file.h"

namespace clusterctl::http {

// The server could not be reached or the connection broke (refused, timed out, reset).
class ConnectionError : public Error {
 public:
  using Error::Error;
};

struct Response {
  int status = 0;
  std::string body;
};

// Stops a streamed request from another thread or from a signal handler: it shuts the
// socket down (shutdown() is async-signal-safe), so the blocked read returns at once.
class StreamCancel {
 public:
  void cancel() noexcept;
  bool cancelled() const noexcept { return cancelled_.load(); }
  void reset() noexcept { cancelled_ = false; }
  // Used by HttpClient while a stream is open.
  void attach(int fd) noexcept;
  void detach() noexcept { fd_ = -1; }

 private:
  std::atomic<int> fd_{-1};
  std::atomic<bool> cancelled_{false};
};

struct ClientOptions {
  std::optional<std::string> bearer_token;
  std::chrono::milliseconds connect_timeout{5000};
  // Longest wait for any byte of a response: covers prompt processing before the first token.
  std::chrono::milliseconds read_timeout{600000};
};

class HttpClient {
 public:
  HttpClient(Url url, ClientOptions options = {});

  const Url& url() const { return url_; }
  // Throw ConnectionError naming the address when the server cannot be reached.
  Response get(const std::string& path) const;
  Response post_json(const std::string& path, const std::string& body) const;

  // POSTs `body` and, when the answer is 200, hands each event's data to on_data as it
  // arrives until on_data returns false or the stream ends; returns {200, ""}. Any other
  // status returns the whole response. When `cancel` fires, returns what was read so far
  // (status 200) without throwing.
  using OnData = std::function<bool(const std::string& data)>;
  Response post_sse(const std::string& path, const std::string& body, const OnData& on_data,
                    StreamCancel* cancel = nullptr) const;

 private:
  Url url_;
  ClientOptions options_;
};

// The message of an OpenAI-style error body ({"error": {"message": ...}}), else the body
// itself (shortened), else the status text.
std::string error_message(const Response& response);

// The token in an API token file, as the server reads it (one word).
using clusterctl::read_token_file;

}  // namespace clusterctl::http
