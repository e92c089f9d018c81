#pragma once
// What one API dialect (OpenAI, Ollama, Anthropic) writes for a generation: the session drives
// the generation the same way for all of them (stop strings, UTF-8, tool-call parsing, the client
// going away) and asks the request's writer for the bytes: streamed events already framed (SSE or
// NDJSON lines), a whole answer's JSON, and errors in the dialect's shape.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "worker/chat/tool_calls.h"
#include "worker/server/generation_service.h"
#include "worker/server/openai_protocol.h"

namespace clusterctl::server {

enum class Dialect { openai, ollama, anthropic };

// How a generation ended, as the writers report it.
struct Outcome {
  FinishReason reason = FinishReason::stop;  // stop (end of generation) or length
  std::optional<std::string> stop_sequence;  // the stop string that ended it
  std::vector<chat::ToolCall> tool_calls;    // parsed from the answer; ids assigned
  size_t streamed_calls = 0;                 // of them, sent already by stream_tool_calls
  Usage usage;
  double prompt_seconds = 0;  // from the request to its first token
  double total_seconds = 0;   // from the request to its end
};

class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  virtual std::string stream_content_type() const { return "text/event-stream; charset=utf-8"; }
  // Streamed: the events to send when the stream opens, for a piece of content, and at the end.
  // `token_ids`: ids whose text is in this piece (OpenAI's return_token_ids); may be emptied.
  virtual std::string stream_begin() = 0;
  virtual std::string stream_text(const std::string& text, std::vector<int32_t>& token_ids) = 0;
  // Calls the answer completed while streaming; `first_index`: how many were sent before.
  virtual std::string stream_tool_calls(const std::vector<chat::ToolCall>& calls, size_t first_index) = 0;
  // The end; sends outcome.tool_calls from outcome.streamed_calls on.
  virtual std::string stream_end(const Outcome& outcome, std::vector<int32_t>& token_ids) = 0;
  virtual std::string stream_error(const ApiError& error) = 0;
  // The log-probabilities of the next token whose text comes (requests with logprobs); they ride
  // on the stream chunk of that text, or in the whole answer. Dialects without them ignore them.
  virtual void add_logprobs(const TokenLogprobs& logprobs) { (void)logprobs; }
  // Whole: the answer's JSON body.
  virtual std::string whole(const std::string& text, const Outcome& outcome, const std::vector<int32_t>& token_ids) = 0;
};

// A request ready to run: what to generate, how to answer, and how to read tool calls out of it.
struct PreparedRequest {
  GenerationRequest generation;
  bool stream = false;
  std::optional<chat::ToolCallFormat> tool_format;  // set when the request offers tools
  bool parallel_tool_calls = true;                  // false: only the first call is kept
  std::string tool_id_prefix = "call_";             // ids of calls the model gives none
  std::unique_ptr<ResponseWriter> writer;
};

// An error as `dialect` shapes it (OpenAI {"error": {...}}, Ollama {"error": "..."}, Anthropic
// {"type": "error", "error": {"type", "message"}}).
Json error_body(Dialect dialect, const ApiError& error);
// The dialect a path belongs to (/api/* Ollama, /v1/messages Anthropic, else OpenAI).
Dialect dialect_of_path(const std::string& path);

// Tool-call ids: the model's own when it writes one, else PREFIX + the request's id + its index
// in the answer (`first_index` + its place in `calls`).
void assign_tool_call_ids(std::vector<chat::ToolCall>& calls, const std::string& prefix, const std::string& request_id,
                          size_t first_index = 0);

}  // namespace clusterctl::server
