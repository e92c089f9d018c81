#pragma once
// llama-perplexity's method on the engine: non-overlapping chunks of the engine's context, the
// first token of each replaced by BOS, the KV cache restarted per chunk, the second half of
// each chunk scored. Every rank calls it; the scores are computed on rank 0 from gathered logits.
#include <cstdint>
#include <functional>
#include <vector>

#include "worker/model/engine.h"

namespace clusterctl::model {

struct PerplexityResult {
  int64_t chunks = 0;
  int64_t scored_tokens = 0;
  std::vector<double> running_ppl;  // after each chunk (rank 0)
  double ppl = 0;
  double ppl_stderr = 0;
};

// `bos` < 0: the chunks keep their first token. `max_chunks` < 0: every whole chunk.
// `on_chunk(index, running_ppl)` runs on rank 0 after each chunk. Throws clusterctl::Error when
// the text has fewer than two chunks of tokens.
PerplexityResult perplexity(Engine& engine, const std::vector<int32_t>& tokens, int32_t bos, int64_t max_chunks,
                            const std::function<void(int64_t, double)>& on_chunk = {});

}  // namespace clusterctl::model
