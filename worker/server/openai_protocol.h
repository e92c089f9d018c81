#pragma once
// The OpenAI wire format: request validation and the JSON of responses, stream chunks
// and error objects, as the official SDKs parse them. No sockets here.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "worker/chat/chat_template.h"
#include "worker/server/generation_service.h"
#include "worker/server/tool_requests.h"

namespace clusterctl::server {

using Json = nlohmann::ordered_json;

// A request the server refuses, as OpenAI reports it:
// HTTP status + {"error": {"message", "type", "param", "code"}}.
class ApiError : public Error {
 public:
  ApiError(int status, std::string message, std::string type, std::string param = {}, std::string code = {})
      : Error(message), status_(status), type_(std::move(type)), param_(std::move(param)), code_(std::move(code)) {}
  int status() const { return status_; }
  Json body() const;

 private:
  int status_;
  std::string type_, param_, code_;
};

ApiError invalid_request(std::string message, std::string param = {}, std::string code = {});

enum class Endpoint { chat_completions, completions };

struct ProtocolLimits {
  int max_tokens_limit = 4096;             // largest max_tokens a request may ask for
  int default_chat_max_tokens = 512;       // chat requests without max_tokens
  int default_completion_max_tokens = 16;  // as OpenAI's /v1/completions
};

// The range table: every request field the server reads, its type and its accepted values. The
// validator takes its bounds from here, and docs/api.md holds this table as
// request_range_table_markdown() renders it (a unit test keeps the two equal).
inline constexpr double kTemperatureMin = 0, kTemperatureMax = 2;
inline constexpr double kTopPMin = 0, kTopPMax = 1;  // top_p 0 keeps only the most likely token (greedy)
inline constexpr size_t kMaxStopStrings = 4;
inline constexpr size_t kMaxStopBytes = 1024;  // each stop string
inline constexpr int kMaxJsonDepth = 64;       // nesting of arrays/objects anywhere in a body

struct FieldRule {
  std::string name;       // as in the body ("max_tokens")
  std::string endpoints;  // "both", "chat", "completions"
  std::string type;       // JSON type(s) accepted
  std::string range;      // accepted values
  std::string meaning;    // default and effect
};
std::vector<FieldRule> request_field_rules(const ProtocolLimits& limits);
std::string request_range_table_markdown(const ProtocolLimits& limits);

struct ApiRequest {
  Endpoint endpoint = Endpoint::chat_completions;
  std::string model;
  bool stream = false;
  bool include_usage = false;                       // stream_options.include_usage
  bool return_token_ids = false;                    // non-standard: each choice carries "token_ids" (docs/api.md)
  std::optional<chat::ToolCallFormat> tool_format;  // the request offers tools: parse calls in this format
  bool parallel_tool_calls = true;
  GenerationRequest generation;
};

// Parse and validate a request body. Throws ApiError (400/404) naming the bad field.
ApiRequest parse_api_request(Endpoint endpoint, const std::string& body, const ModelInfo& model,
                             const chat::ChatTemplate& chat_template, const ProtocolLimits& limits);

std::string finish_reason_name(FinishReason reason);

// Whole (non-streamed) responses.
// `token_ids` (the generated ids; added as "token_ids" when the request asked for them) may be null.
// `logprobs` (each token's, when the request asked for them) may be null.
Json completion_response(const ApiRequest& request, const std::string& id, int64_t created, const std::string& text,
                         const std::string& finish_reason, const Usage& usage,
                         const std::vector<int32_t>* token_ids = nullptr,
                         const std::vector<TokenLogprobs>* logprobs = nullptr);

// Stream chunks. `text` = the delta; `finish_reason` set only on the last content chunk.
// `token_ids`: the ids of the tokens this chunk's text came from (as for completion_response).
// `logprobs`: those of the tokens since the last chunk; `text_offset`: where the first one's text
// starts in the whole answer (completions' text_offset).
Json stream_chunk(const ApiRequest& request, const std::string& id, int64_t created, const std::string& text,
                  bool first, const std::optional<std::string>& finish_reason,
                  const std::vector<int32_t>* token_ids = nullptr, const std::vector<TokenLogprobs>* logprobs = nullptr,
                  size_t text_offset = 0);
// A choice's "logprobs" in the endpoint's shape (chat: {content: [...]}; completions: {tokens,
// token_logprobs, top_logprobs, text_offset}); null when the request did not ask for them.
Json logprobs_json(const ApiRequest& request, const std::vector<TokenLogprobs>* logprobs, size_t text_offset);
// The extra last chunk with empty choices that carries usage (stream_options.include_usage).
Json stream_usage_chunk(const ApiRequest& request, const std::string& id, int64_t created, const Usage& usage);

Json usage_json(const Usage& usage);
Json models_response(const ModelInfo& model, int64_t created);

// One server-sent event: "data: <json>\n\n". Invalid UTF-8 becomes U+FFFD.
std::string sse_event(const Json& payload);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// Holds back an incomplete UTF-8 character at the end of streamed text, so every
// chunk sent is valid UTF-8 on its own.
class Utf8Joiner {
 public:
  std::string feed(std::string_view piece);
  std::string flush();  // whatever is left (may be invalid; sse_event replaces it)

 private:
  std::string pending_;
};

}  // namespace clusterctl::server
