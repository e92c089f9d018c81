#pragma once
// `clusterctl bench-serve URL --shared-prefix N`: the time to first token of a prompt whose first
// N tokens an earlier request already sent (a system prompt, a chat's earlier turns), with the
// server's prompt cache (cache_prompt true) and without (false), interleaved round by round.
#include <nlohmann/json.hpp>
#include <string>

#include "controller/http/http_client.h"

namespace clusterctl::cli {

struct PrefixBenchOptions {
  std::string model;
  int prefix_tokens = 1500;  // shared by every request
  int new_tokens = 20;       // each request's own part after it
  int rounds = 5;            // each: one request with the cache, then the same one without
  int n_predict = 16;        // max_tokens of each
};

// Runs the rounds; prints a table unless `json`; returns the results as JSON. Throws
// clusterctl::Error when the server has no /tokenize (it sizes the prompts in its own tokens).
nlohmann::json run_prefix_bench(const http::HttpClient& client, const PrefixBenchOptions& options, bool json);

}  // namespace clusterctl::cli
