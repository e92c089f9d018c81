#pragma once
// The seam between the HTTP layer and whatever generates tokens. The server renders
// chat templates, parses and validates requests, enforces stop strings and streams;
// a GenerationService owns the queue and the model. The engine's continuous-batching
// scheduler implements this interface; it calls back from its own scheduler thread.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "worker/common/error.h"
#include "worker/server/load_history.h"

namespace clusterctl::sampling {
struct JsonSchema;
}

namespace clusterctl::server {

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy
  float top_p = 1.0f;
  std::optional<uint64_t> seed;                       // none = the service picks one
  int top_k = 0;                                      // 0: off
  float min_p = 0.0f;                                 // 0: off
  float frequency_penalty = 0.0f;                     // OpenAI: count of each generated token x this, off the logit
  float presence_penalty = 0.0f;                      // OpenAI: off the logit of every token generated so far
  float repetition_penalty = 1.0f;                    // llama.cpp: the last 64 tokens (prompt included); 1: off
  std::vector<std::pair<int32_t, float>> logit_bias;  // token id -> bias; -100 bans
  int logprobs = -1;  // >= 0: report each token's log-probability and this many alternatives
  // Structured output: the answer is a JSON value (constrain_json); json_schema null: any object.
  bool constrain_json = false;
  std::shared_ptr<const sampling::JsonSchema> json_schema;
};

// A token and its log-probability under the model (log-softmax of its logits).
struct TokenLogprob {
  int32_t id = -1;
  std::string text;  // the bytes it stands for (may be part of a UTF-8 character)
  float logprob = 0;
};
struct TokenLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;  // most likely first
};

struct GenerationRequest {
  // Prompt text. For chat requests it is the rendered chat template, which already
  // holds the model's BOS text and control tokens: tokenize it with special-token
  // parsing on and without adding another BOS (`templated` = true). A plain
  // completion prompt is user text: add BOS as the model does and do not parse
  // control-token text in it (`templated` = false).
  std::string prompt;
  bool templated = false;
  SamplingParams sampling;
  int max_tokens = 16;  // validated by the server: 1 .. its configured limit
  // Stop strings, for services that can stop early on their own. The server enforces
  // them in any case, on the decoded text, and cancels the request on a match.
  std::vector<std::string> stop;
  // Send control tokens' text (<|python_tag|>, Kimi's tool-call markers) with the answer, for
  // the tool-call parser; end-of-generation tokens still end the answer unsent.
  bool render_special = false;
  // Reuse the keys and values of a prompt prefix an earlier request left in a KV slot
  // (llama-server's `cache_prompt`); false: prefill the whole prompt.
  bool cache_prompt = true;
};

enum class FinishReason {
  stop,       // end-of-generation token
  length,     // max_tokens reached (or the context is full)
  cancelled,  // cancel() was called
  error,      // the service failed; `message` says why
};

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;  // of the prompt tokens, those taken from the prompt cache (not computed again)
};

struct GenerationCallbacks {
  // One generated token: the text it adds (may be empty, e.g. half of a UTF-8 character,
  // completed by the next piece) and its id (-1 for text held back by the detokenizer and
  // flushed at the end). Called in order on the service's thread.
  std::function<void(std::string_view text_piece, int32_t token_id)> on_token;
  // Called exactly once, last, also after cancel().
  std::function<void(FinishReason reason, Usage usage, const std::string& message)> on_done;
  // With SamplingParams::logprobs >= 0: the token's log-probabilities, just before its on_token.
  std::function<void(const TokenLogprobs& logprobs)> on_logprobs;
};

// Lets the server stop a request (client gone, stop string seen). Safe from any thread,
// any number of times, also after the request finished.
class GenerationHandle {
 public:
  virtual ~GenerationHandle() = default;
  virtual void cancel() = 0;
};

// submit() throws this when the request queue is at its limit: the server answers 429.
class QueueFullError : public Error {
 public:
  QueueFullError(const std::string& message, int retry_after_seconds)
      : Error(message), retry_after_seconds_(retry_after_seconds) {}
  int retry_after_seconds() const { return retry_after_seconds_; }

 private:
  int retry_after_seconds_;
};

// submit() throws this when the service cannot serve anything (a node of the cluster is lost):
// the server answers 503 with the message.
class ServiceUnavailableError : public Error {
 public:
  using Error::Error;
};

// submit() throws this when the request cannot be served as asked (e.g. the prompt is
// longer than the context): the server answers 400 with `code`.
class InvalidRequestError : public Error {
 public:
  InvalidRequestError(const std::string& message, std::string code) : Error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

struct ModelInfo {
  std::string id;                            // what clients put in "model"
  std::optional<std::string> chat_template;  // tokenizer.chat_template; none = fallback format
  std::string bos_token;                     // text of the BOS/EOS tokens, for templates
  std::string eos_token;
  int context_length = 0;
  std::string architecture;  // general.architecture ("llama", "qwen2" ...), for /api/show and /api/tags
  int n_vocab = 0;           // token ids are 0 .. n_vocab-1 (0: unknown)
};

struct ClusterNode {
  int rank = 0;
  std::string host;
  std::string role;           // e.g. "rank 0 (API)", "worker"
  std::string share;          // the part of the model it computes ("q_heads [0,16) ffn [0,4096) ..."), "" unknown
  uint64_t weight_bytes = 0;  // the weights it reads per token (0: unknown)
  std::string link;           // the cluster link type of its node ("ethernet", "thunderbolt"; "" on one machine)
};

// What the ranks measured (the dashboard, /metrics, `clusterctl status`): each rank's totals as
// last reported (empty: not measured yet), and the last minutes (load_history.h).
struct ClusterLoad {
  std::vector<RankFigures> ranks;
  std::vector<RankPerToken> per_token;  // by rank, over the last minute (or since the start when idle)
  std::vector<LoadPoint> history;       // oldest first
  std::string allreduce;                // how the ranks all-reduce, an emulated link said so ("" on one rank)
};

struct ServiceStats {
  size_t queued = 0;   // waiting for a slot
  size_t running = 0;  // decoding now
  double allreduce_seconds_total = 0;
  uint64_t allreduce_count = 0;
  uint64_t draft_tokens = 0;             // speculative decoding: tokens drafted
  uint64_t draft_accepted = 0;           // and kept by the target
  uint64_t prompt_tokens_cached = 0;     // prompt tokens taken from a slot's earlier request
  uint64_t prompt_tokens_evaluated = 0;  // prompt tokens computed (prefilled)
  uint64_t prompt_cache_hits = 0;        // requests that reused a prefix
};

class GenerationService {
 public:
  virtual ~GenerationService() = default;
  virtual const ModelInfo& model() const = 0;
  // Queues a request; callbacks arrive on the service's thread. Throws QueueFullError
  // or InvalidRequestError (nothing is called back then).
  virtual std::shared_ptr<GenerationHandle> submit(GenerationRequest request, GenerationCallbacks callbacks) = 0;
  virtual ServiceStats stats() const = 0;
  virtual std::vector<ClusterNode> nodes() const = 0;
  virtual ClusterLoad load() const { return {}; }
  // POST /tokenize and /detokenize. `add_special`: BOS as the model adds it; `parse_special`:
  // control-token text becomes that token. A service without a tokenizer throws Error.
  virtual std::vector<int32_t> tokenize(const std::string& text, bool add_special, bool parse_special) const {
    (void)text, (void)add_special, (void)parse_special;
    throw Error("this server has no tokenizer");
  }
  // The bytes of one token ("" for control tokens), and of a sequence (as the answer text).
  virtual std::string token_text(int32_t id) const {
    (void)id;
    throw Error("this server has no tokenizer");
  }
  virtual std::string detokenize(const std::vector<int32_t>& ids) const {
    (void)ids;
    throw Error("this server has no tokenizer");
  }
  // Why the service can serve nothing any more (e.g. "node3 (rank 2) is lost: ..."); none while
  // it serves. /health answers 503 with it.
  virtual std::optional<std::string> unavailable() const { return std::nullopt; }
};

}  // namespace clusterctl::server
