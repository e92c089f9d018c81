#pragma once
// Chooses the next token from a full vocabulary of logits (rank 0, after the gather), in
// llama.cpp's default order: logit bias -> repetition/presence/frequency penalties -> top-k ->
// top-p -> min-p -> temperature -> draw. Temperature <= 0 is greedy (arg-max after penalties).
// A TokenConstraint (structured output) restricts which tokens may come next.
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
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
  // OpenAI's penalties, over the tokens generated so far (accept(token, true)), not the prompt:
  // logit -= count * frequency_penalty + (count > 0) * generated_presence_penalty.
  float frequency_penalty = 0.0f;
  float generated_presence_penalty = 0.0f;
  // Added to the logits of these ids before everything else; -100 or less bans the token.
  std::vector<std::pair<int32_t, float>> logit_bias;
  // >= 0: sample() reports the chosen token's log-probability and this many most likely ones.
  int logprobs = -1;
  uint64_t seed = 0xC0FFEE;

  bool greedy() const { return temperature <= 0.0f; }
  // Greedy and nothing that needs the full logits: the cross-rank arg-max gives the same token.
  bool plain_greedy() const {
    return greedy() && repeat_penalty == 1.0f && presence_penalty == 0.0f && frequency_penalty == 0.0f &&
           generated_presence_penalty == 0.0f && logit_bias.empty() && logprobs < 0;
  }
};

// Limits which tokens may come next (structured output). The sampler asks before it picks.
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Whether `token` may come next (for an end-of-generation token: whether the output is complete).
  virtual bool allows(int32_t token) const = 0;
  // `token` was chosen.
  virtual void accept(int32_t token) = 0;
};

// The log-probabilities of one step, from the model's logits (log-softmax, before bias,
// penalties, truncation and temperature).
struct TokenLogprobs {
  int32_t token = -1;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely first (ties: lower id first)
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

  // Picks a token from n_vocab logits (not modified). Allocates nothing after the first call
  // (without logprobs or a constraint). With params().logprobs >= 0 and `logprobs` set, fills it.
  // Throws clusterctl::Error when the constraint and the logit bias leave no token.
  int32_t sample(const float* logits, TokenLogprobs* logprobs = nullptr);
  // The distribution sample() draws from for these logits without a constraint: the candidates
  // left after bias, penalties, top-k, top-p and min-p, most likely first, their p at the
  // temperature (greedy: the arg-max alone, p = 1). Valid until the next call. Speculative
  // sampling compares two of them.
  const std::vector<TokenProb>& distribution(const float* logits);
  // A uniform draw in [0, 1) from the sampler's seeded generator.
  double uniform();
  // Records a token of the context for the penalties; `generated`: a token the model produced
  // (counted for frequency_penalty and generated_presence_penalty).
  void accept(int32_t token, bool generated = false);
  void reset();
  const SamplerParams& params() const { return p_; }
  // Owned from now on; accept(token, true) passes generated tokens on to it.
  void set_constraint(std::unique_ptr<TokenConstraint> constraint) { constraint_ = std::move(constraint); }

 private:
  using Candidate = TokenProb;
  void load_candidates(bool constrained);
  void apply_penalties();
  void truncate();  // cand_ (finite logits, any order) -> the distribution to draw from
  int32_t pick();   // truncate(), then the arg-max or a draw
  void fill_logprobs(const float* logits, int32_t token, TokenLogprobs& out);

  int64_t n_vocab_;
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  std::unordered_map<int32_t, int> generated_counts_;
  std::unique_ptr<TokenConstraint> constraint_;
  std::vector<Candidate> cand_;
  std::vector<float> adjusted_;   // logits after bias and penalties, indexed by id
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
