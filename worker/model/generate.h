#pragma once
// The decode loop every rank runs: prompt processing as batches, then one token per forward
// pass. Greedy decoding takes the cross-rank arg-max; sampling gathers the logits to rank 0,
// which samples and broadcasts the token (and whether to stop) so all ranks stay in step.
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "worker/model/engine.h"
#include "worker/sampling/sampler.h"

namespace clusterctl::model {

struct GenerateStats {
  int64_t prompt_tokens = 0;
  int64_t generated = 0;
  double prompt_seconds = 0;
  double generate_seconds = 0;  // from the first token after the prompt to the last
};

struct GenerateRequest {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 128;
  std::vector<int32_t> stop_tokens;  // EOS / EOT: generation ends, the token is not emitted
  int32_t slot = 0;
};

// `on_token` runs on rank 0 for every emitted token and returns false to stop (e.g. on a stop
// string). Returns the generated tokens (identical on every rank).
std::vector<int32_t> generate(Engine& engine, sampling::Sampler& sampler, const GenerateRequest& req,
                              const std::function<bool(int32_t)>& on_token, GenerateStats* stats = nullptr);

}  // namespace clusterctl::model
