#pragma once
// Drafters for speculative decoding: they propose the next few tokens of a sequence cheaply, and
// the target model checks them all in one forward pass (speculative.h). Both run on rank 0 alone.
// - prompt lookup (`--draft ngram`): the tokens that followed the latest earlier occurrence of the
//   context's last n-gram, in the prompt or the text generated so far; free, and good wherever
//   the answer repeats its input (code edits, quotes, summaries, structured output);
// - a draft model (`--draft MODEL.gguf`): a smaller model with the target's vocabulary, run as a
//   world-size-1 engine with one KV slot per sequence.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "worker/sampling/sampler.h"

namespace clusterctl::kernels {
class ThreadPool;
}

namespace clusterctl::speculative {

// One round's proposal. `q[i]` is the distribution token i was drawn from (a sampling draft
// model); empty `q`: the drafter is deterministic, q is one-hot on each token.
struct Draft {
  std::vector<int32_t> tokens;
  std::vector<std::vector<sampling::TokenProb>> q;
  void clear() {
    tokens.clear();
    q.clear();
  }
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  // Proposes up to `k` tokens continuing `context` (the prompt and the generated tokens of the
  // sequence in KV slot `slot`; the target has not run the last one yet). `sampler`: the
  // sequence's sampler when it samples (its cuts and temperature shape q; its generator draws),
  // null when greedy.
  virtual void propose(int32_t slot, const std::vector<int32_t>& context, int k, sampling::Sampler* sampler,
                       Draft& out) = 0;
  // A new sequence takes KV slot `slot` and reuses the first `n_tokens` of its prompt there (the
  // serving scheduler's prompt cache): a drafter with a cache of its own keeps at most those, so
  // it computes the rest as it would for a fresh sequence.
  virtual void retain(int32_t slot, size_t n_tokens) { (void)slot, (void)n_tokens; }
  // What `--draft` named, for reports.
  virtual std::string describe() const = 0;
  // Seconds the last propose() spent catching up the context before drafting (a draft model's
  // prompt pass over what it had not seen), so that a round after a prompt or a pause still
  // tells what drafting a token costs; 0: no catch-up (prompt lookup).
  virtual double last_catch_up_s() const { return 0; }
};

// Prompt lookup: the longest suffix of the context, from `max_ngram` tokens down to `min_ngram`,
// that occurred earlier; proposes what followed its latest earlier occurrence.
class NgramDrafter : public Drafter {
 public:
  explicit NgramDrafter(int min_ngram = 1, int max_ngram = 3) : min_ngram_(min_ngram), max_ngram_(max_ngram) {}
  void propose(int32_t slot, const std::vector<int32_t>& context, int k, sampling::Sampler* sampler,
               Draft& out) override;
  std::string describe() const override { return "ngram"; }

 private:
  int min_ngram_, max_ngram_;
};

// What a draft model must agree with: the target's token texts (tokenizer.ggml.tokens), its
// context and how many sequences it serves at once.
struct DraftTarget {
  std::vector<std::string> tokens;
  int64_t n_ctx = 0;
  int64_t n_slots = 1;
  int threads = 0;  // 0: the machine's default
  // The model's thread pool: a draft model runs on it (its own pool's idle workers would spin
  // against the model's for the cores; one process drafting lost 2.5x to that). Null: its own.
  kernels::ThreadPool* pool = nullptr;
};

// `spec`: "ngram" or the path of a GGUF draft model. Throws clusterctl::Error naming the cause
// (a missing file, a different vocabulary) and the fix.
std::unique_ptr<Drafter> open_drafter(const std::string& spec, const DraftTarget& target);

}  // namespace clusterctl::speculative
