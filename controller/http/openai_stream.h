#pragma once
// Streamed completions from an OpenAI-compatible server (/v1/completions and
// /v1/chat/completions with "stream": true), with the timings the CLI reports:
// time to first token, generation time and tokens/s. Shared by `run`, `chat` and `bench --serve`.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/http/http_client.h"

namespace clusterctl::http {

// The server answered with an error status; the message holds its error text.
class ApiStatusError : public Error {
 public:
  ApiStatusError(int status, const std::string& message) : Error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

enum class ApiKind { completions, chat_completions };

struct StreamResult {
  std::string text;
  std::vector<int32_t> token_ids;  // when the server sends them (request "return_token_ids": true)
  bool has_token_ids = false;
  std::string finish_reason;         // "" when cancelled or the stream broke off
  std::optional<int> prompt_tokens;  // from "usage" (stream_options.include_usage)
  std::optional<int> cached_tokens;  // usage.prompt_tokens_details.cached_tokens (the prompt cache)
  int completion_tokens = 0;         // from "usage", else the number of content chunks
  int content_chunks = 0;
  double time_to_first_token_s = 0;  // request sent -> first non-empty text
  double total_s = 0;                // request sent -> end of stream
  bool cancelled = false;
  // Generation after the first token: (completion_tokens - 1) tokens over total - TTFT.
  double generate_s() const { return total_s - time_to_first_token_s; }
  double generate_tokens_per_s() const {
    return completion_tokens > 1 && generate_s() > 0 ? (completion_tokens - 1) / generate_s() : 0;
  }
};

// Streams one request. `request` is the JSON body without "stream"/"stream_options" (added
// here). on_text gets each piece of text as it arrives. Throws ApiStatusError for a non-200
// answer or an error event, ConnectionError when the server cannot be reached.
StreamResult stream_completion(const HttpClient& client, ApiKind kind, nlohmann::json request,
                               const std::function<void(std::string_view)>& on_text, StreamCancel* cancel = nullptr);

// The id of the (first) model the server serves, from GET /v1/models. Throws ApiStatusError
// (401: the token is missing or wrong) or ConnectionError.
std::string served_model_id(const HttpClient& client);

// "HTTP <status> from <url>: <message>" with a hint for 401.
std::string describe_status(const HttpClient& client, const Response& response);

}  // namespace clusterctl::http
