#pragma once
// The request fields that shape sampling beyond temperature/top_p/seed (OpenAI's penalties,
// logit_bias, logprobs, response_format, and llama.cpp's top_k/min_p/repetition_penalty), and
// the fields for choices this server does not make (n, best_of, echo, suffix), refused with 400.
#include "worker/server/openai_protocol.h"

namespace clusterctl::server {

inline constexpr double kPenaltyMin = -2, kPenaltyMax = 2;  // frequency_penalty, presence_penalty
inline constexpr double kRepetitionPenaltyMax = 10;
inline constexpr double kLogitBiasMin = -100, kLogitBiasMax = 100;
inline constexpr size_t kMaxLogitBiasEntries = 1024;
inline constexpr int kMaxTopLogprobs = 20;        // chat top_logprobs
inline constexpr int kMaxCompletionLogprobs = 5;  // completions logprobs
inline constexpr int64_t kMaxTopK = 1 << 30;

// Reads those fields of `body` into `sampling`. Throws ApiError (400) naming the field.
void parse_sampling_fields(const Json& body, Endpoint endpoint, const ModelInfo& model, SamplingParams& sampling);

}  // namespace clusterctl::server
