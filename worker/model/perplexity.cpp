#include "worker/model/perplexity.h"

#include <algorithm>
#include <cmath>

#include "worker/common/error.h"

namespace clusterctl::model {
namespace {

// -log p(token) under softmax(logits), in double as llama-perplexity computes it.
double nll_of(const float* logits, int64_t n, int32_t token) {
  float mx = logits[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i] - mx));
  return -(static_cast<double>(logits[token] - mx) - std::log(sum));
}

}  // namespace

PerplexityResult perplexity(Engine& engine, const std::vector<int32_t>& tokens, int32_t bos, int64_t max_chunks,
                            const std::function<void(int64_t, double)>& on_chunk) {
  const int64_t n_ctx = engine.n_ctx(), n_vocab = engine.hparams().n_vocab;
  if (static_cast<int64_t>(tokens.size()) < 2 * n_ctx)
    throw Error("the text gives " + std::to_string(tokens.size()) + " tokens; perplexity with a context of " +
                std::to_string(n_ctx) + " needs at least " + std::to_string(2 * n_ctx) +
                " (use a longer text or a smaller --ctx)");
  PerplexityResult res;
  res.chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (max_chunks >= 0) res.chunks = std::min(res.chunks, max_chunks);
  const int64_t first = n_ctx / 2, step = engine.max_batch();
  // Rows first .. n_ctx-2 are scored: each predicts the token after it.
  auto scored = [&](int64_t j) { return j >= first && j < n_ctx - 1; };
  double nll = 0, nll2 = 0;
  Batch batch;
  for (int64_t c = 0; c < res.chunks; ++c) {
    const int64_t start = c * n_ctx;
    for (int64_t b0 = 0; b0 < n_ctx; b0 += step) {
      const int64_t b1 = std::min(n_ctx, b0 + step);
      batch.clear();
      for (int64_t j = b0; j < b1; ++j)
        batch.add(j == 0 && bos >= 0 ? bos : tokens[start + j], static_cast<int32_t>(j), 0, scored(j));
      LocalLogits l = engine.forward(batch);
      int64_t row = 0;
      for (int64_t j = b0; j < b1; ++j) {
        if (!scored(j)) continue;
        const float* full = engine.gather(l, row++);
        if (!full) continue;  // not rank 0
        const double v = nll_of(full, n_vocab, tokens[start + j + 1]);
        nll += v;
        nll2 += v * v;
        ++res.scored_tokens;
      }
    }
    if (res.scored_tokens > 0) {
      res.running_ppl.push_back(std::exp(nll / res.scored_tokens));
      if (on_chunk) on_chunk(c, res.running_ppl.back());
    }
  }
  if (res.scored_tokens == 0) return res;
  const double mean = nll / res.scored_tokens;
  const double var = nll2 / res.scored_tokens - mean * mean;
  res.ppl = std::exp(mean);
  res.ppl_stderr = res.scored_tokens > 1 ? res.ppl * std::sqrt(std::max(0.0, var) / (res.scored_tokens - 1)) : 0.0;
  return res;
}

}  // namespace clusterctl::model
