#pragma once
// Chooses the next token from a full vocabulary of logits (rank 0, after the gather), in
// llama.cpp's default order: repetition/presence penalties -> top-k -> top-p -> min-p ->
// temperature -> draw. Temperature <= 0 is greedy (arg-max after penalties).
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace clusterctl::sampling {

struct SamplerParams {
  float temperature = 0.8f;
  int top_k = 40;                 // <= 0: off
  float top_p = 0.95f;            // >= 1: off
  float min_p = 0.05f;            // <= 0: off
  float repeat_penalty = 1.0f;    // 1: off; divides positive logits (multiplies negative) of recent tokens
  float presence_penalty = 0.0f;  // subtracted once from the logit of every recent token
  int repeat_last_n = 64;         // how many recent tokens the penalties look at
  uint64_t seed = 0xC0FFEE;

  bool greedy() const { return temperature <= 0.0f; }
};

// A token and its probability in the distribution the sampler draws from.
struct TokenProb {
  int32_t id;
  float logit;
  float p;
};

// The token at which the cumulative probability of `dist` passes `r` (a uniform draw in [0, 1)).
int32_t draw(const std::vector<TokenProb>& dist, double r);

class Sampler {
 public:
  Sampler(int64_t n_vocab, SamplerParams params);

  // Picks a token from n_vocab logits (not modified). Allocates nothing after the first call.
  int32_t sample(const float* logits);
  // The distribution sample() draws from for these logits: the candidates left after penalties,
  // top-k, top-p and min-p, most likely first, their p at the temperature (greedy: the arg-max
  // alone, p = 1). Valid until the next call. Speculative sampling compares two of them.
  const std::vector<TokenProb>& distribution(const float* logits);
  // A uniform draw in [0, 1) from the sampler's seeded generator.
  double uniform();
  // Records a token of the context (prompt or generated) for the penalties.
  void accept(int32_t token);
  void reset();
  const SamplerParams& params() const { return p_; }

 private:
  using Candidate = TokenProb;
  void apply_penalties();

  int64_t n_vocab_;
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  std::vector<Candidate> cand_;
  std::vector<int32_t> counted_;  // scratch for penalties: tokens seen
};

// Finds stop strings in streamed text: feed() the new text, and it says how much of the text is
// safe to print (text that might be the start of a stop string is held back) and whether a
// stop string has been reached.
class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Appends `piece`; returns the text that may be printed now.
  std::string feed(const std::string& piece);
  // Text held back at the end (printed when generation ends without a stop).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace clusterctl::sampling
