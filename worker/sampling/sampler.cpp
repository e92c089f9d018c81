#include "worker/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "worker/common/error.h"

namespace clusterctl::sampling {

Sampler::Sampler(int64_t n_vocab, SamplerParams params) : n_vocab_(n_vocab), p_(std::move(params)), rng_(p_.seed) {
  if (n_vocab < 1) throw Error("the sampler needs a vocabulary");
  if (p_.repeat_penalty <= 0) throw Error("--repeat-penalty must be positive (1 = off)");
  if (p_.top_p <= 0) throw Error("--top-p must be in (0, 1] (1 = off)");
  if (p_.min_p >= 1) throw Error("--min-p must be below 1 (0 = off)");
  cand_.reserve(n_vocab);
  adjusted_.reserve(n_vocab);
}

void Sampler::reset() {
  recent_.clear();
  generated_counts_.clear();
  rng_.seed(p_.seed);
}

void Sampler::accept(int32_t token, bool generated) {
  if (generated) {
    ++generated_counts_[token];
    if (constraint_) constraint_->accept(token);
  }
  if (p_.repeat_last_n <= 0) return;
  recent_.push_back(token);
  while (static_cast<int>(recent_.size()) > p_.repeat_last_n) recent_.pop_front();
}

void Sampler::apply_penalties() {
  constexpr float kBanned = -std::numeric_limits<float>::infinity();
  for (const auto& [tok, bias] : p_.logit_bias) {
    if (tok < 0 || tok >= n_vocab_) continue;
    adjusted_[tok] = bias <= -100.0f ? kBanned : adjusted_[tok] + bias;
  }
  if (!recent_.empty() && (p_.repeat_penalty != 1.0f || p_.presence_penalty != 0.0f)) {
    // Each distinct recent token is penalised once, as llama.cpp does.
    counted_.assign(recent_.begin(), recent_.end());
    std::sort(counted_.begin(), counted_.end());
    counted_.erase(std::unique(counted_.begin(), counted_.end()), counted_.end());
    for (int32_t tok : counted_) {
      if (tok < 0 || tok >= n_vocab_) continue;
      float& l = adjusted_[tok];
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
      l -= p_.presence_penalty;
    }
  }
  if (p_.frequency_penalty != 0.0f || p_.generated_presence_penalty != 0.0f) {
    for (const auto& [tok, count] : generated_counts_) {
      if (tok < 0 || tok >= n_vocab_) continue;
      adjusted_[tok] -= static_cast<float>(count) * p_.frequency_penalty + p_.generated_presence_penalty;
    }
  }
}

// cand_ = every token not banned (and, when `constrained`, allowed next by the constraint).
void Sampler::load_candidates(bool constrained) {
  cand_.clear();
  for (int64_t i = 0; i < n_vocab_; ++i) {
    const float l = adjusted_[i];
    if (l == -std::numeric_limits<float>::infinity()) continue;
    if (constrained && !constraint_->allows(static_cast<int32_t>(i))) continue;
    cand_.push_back({static_cast<int32_t>(i), l, 0.0f});
  }
  if (cand_.empty()) {
    throw Error(constrained ? "no token may come next: the logit bias bans every token the response format allows"
                            : "every token is banned by the logit bias");
  }
}

namespace {
// Most likely first; the lower id first on ties, as the cross-rank arg-max (Communicator::argmax).
constexpr auto by_logit = [](const auto& a, const auto& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
};
}  // namespace

void Sampler::truncate() {
  if (p_.greedy()) {
    const Candidate best = *std::min_element(cand_.begin(), cand_.end(), by_logit);
    cand_.assign(1, {best.id, best.logit, 1.0f});
    return;
  }

  size_t n = cand_.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) n = p_.top_k;
  // The same order either way (by_logit is total); a full sort is several times faster than a
  // partial one over the whole vocabulary (no top-k: every request with OpenAI's defaults).
  if (n == cand_.size()) {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  } else {
    std::partial_sort(cand_.begin(), cand_.begin() + n, cand_.end(), by_logit);
  }
  cand_.resize(n);

  // Softmax of the remaining candidates (at temperature 1, for top-p and min-p as llama.cpp).
  auto softmax = [&](float temp) {
    const float mx = cand_[0].logit;
    double sum = 0;
    for (auto& c : cand_) sum += (c.p = std::exp((c.logit - mx) / temp));
    for (auto& c : cand_) c.p = static_cast<float>(c.p / sum);
  };
  softmax(1.0f);
  if (p_.top_p < 1.0f) {
    double cum = 0;
    size_t keep = cand_.size();
    for (size_t i = 0; i < cand_.size(); ++i) {
      cum += cand_[i].p;
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
    cand_.resize(keep);
  }
  if (p_.min_p > 0.0f) {
    const float floor = cand_[0].p * p_.min_p;
    size_t keep = 1;
    while (keep < cand_.size() && cand_[keep].p >= floor) ++keep;
    cand_.resize(keep);
  }
  softmax(p_.temperature);
}

int32_t Sampler::pick() {
  truncate();
  return p_.greedy() ? cand_[0].id : draw(cand_, uniform());
}

double Sampler::uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

int32_t draw(const std::vector<TokenProb>& dist, double r) {
  double cum = 0;
  for (const auto& c : dist)
    if (r < (cum += c.p)) return c.id;
  return dist.back().id;
}

const std::vector<TokenProb>& Sampler::distribution(const float* logits) {
  adjusted_.assign(logits, logits + n_vocab_);
  apply_penalties();
  load_candidates(false);
  truncate();
  return cand_;
}

int32_t Sampler::sample(const float* logits, TokenLogprobs* logprobs) {
  adjusted_.assign(logits, logits + n_vocab_);
  apply_penalties();
  load_candidates(false);
  int32_t token = -1;
  if (!constraint_) {
    token = pick();
  } else if (p_.greedy()) {
    // The most likely allowed token: the best few first, in order, then the rest of the vocabulary.
    const size_t head = std::min<size_t>(16, cand_.size());
    std::partial_sort(cand_.begin(), cand_.begin() + head, cand_.end(), by_logit);
    for (size_t i = 0; i < head && token < 0; ++i)
      if (constraint_->allows(cand_[i].id)) token = cand_[i].id;
    for (size_t i = head; i < cand_.size(); ++i) {
      if ((token < 0 || by_logit(cand_[i], Candidate{token, adjusted_[token], 0})) && constraint_->allows(cand_[i].id))
        token = cand_[i].id;
    }
    if (token < 0) load_candidates(true);  // throws: nothing is allowed
  } else {
    // Draw as if unconstrained and keep the token when allowed; else draw again from the allowed
    // tokens alone. Together the two draws pick each allowed token with its masked probability.
    token = pick();
    if (!constraint_->allows(token)) {
      load_candidates(true);
      token = pick();
    }
  }
  if (logprobs && p_.logprobs >= 0) fill_logprobs(logits, token, *logprobs);
  return token;
}

void Sampler::fill_logprobs(const float* logits, int32_t token, TokenLogprobs& out) {
  float mx = logits[0];
  for (int64_t i = 1; i < n_vocab_; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < n_vocab_; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  out.token = token;
  out.logprob = static_cast<float>(logits[token] - lse);
  out.top.clear();
  const size_t n = std::min<size_t>(static_cast<size_t>(p_.logprobs), static_cast<size_t>(n_vocab_));
  if (n == 0) return;
  cand_.resize(n_vocab_);
  for (int64_t i = 0; i < n_vocab_; ++i) cand_[i] = {static_cast<int32_t>(i), logits[i], 0.0f};
  std::partial_sort(cand_.begin(), cand_.begin() + n, cand_.end(), by_logit);
  for (size_t i = 0; i < n; ++i) out.top.emplace_back(cand_[i].id, static_cast<float>(cand_[i].logit - lse));
}

std::string StopStrings::feed(const std::string& piece) {
  if (stopped_) return {};
  pending_ += piece;
  for (const auto& s : stops_) {
    if (s.empty()) continue;
    if (auto at = pending_.find(s); at != std::string::npos) {
      stopped_ = true;
      std::string out = pending_.substr(0, at);
      pending_.clear();
      return out;
    }
  }
  // Hold back the longest tail that is a prefix of some stop string.
  size_t hold = 0;
  for (const auto& s : stops_)
    for (size_t len = std::min(s.size() - (s.empty() ? 0 : 1), pending_.size()); len > hold; --len)
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopStrings::flush() {
  std::string out;
  if (!stopped_) out.swap(pending_);
  return out;
}

}  // namespace clusterctl::sampling
