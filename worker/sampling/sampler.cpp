#include "worker/sampling/sampler.h"

#include <algorithm>
#include <cmath>

#include "worker/common/error.h"

namespace clusterctl::sampling {

Sampler::Sampler(int64_t n_vocab, SamplerParams params) : n_vocab_(n_vocab), p_(params), rng_(params.seed) {
  if (n_vocab < 1) throw Error("the sampler needs a vocabulary");
  if (p_.repeat_penalty <= 0) throw Error("--repeat-penalty must be positive (1 = off)");
  if (p_.top_p <= 0) throw Error("--top-p must be in (0, 1] (1 = off)");
  if (p_.min_p >= 1) throw Error("--min-p must be below 1 (0 = off)");
  cand_.reserve(n_vocab);
}

void Sampler::reset() {
  recent_.clear();
  rng_.seed(p_.seed);
}

void Sampler::accept(int32_t token) {
  if (p_.repeat_last_n <= 0) return;
  recent_.push_back(token);
  while (static_cast<int>(recent_.size()) > p_.repeat_last_n) recent_.pop_front();
}

void Sampler::apply_penalties() {
  if (recent_.empty() || (p_.repeat_penalty == 1.0f && p_.presence_penalty == 0.0f)) return;
  // Each distinct recent token is penalised once, as llama.cpp does.
  counted_.assign(recent_.begin(), recent_.end());
  std::sort(counted_.begin(), counted_.end());
  counted_.erase(std::unique(counted_.begin(), counted_.end()), counted_.end());
  for (int32_t tok : counted_) {
    if (tok < 0 || tok >= n_vocab_) continue;
    float& l = cand_[tok].logit;  // cand_ is still indexed by id here
    l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    l -= p_.presence_penalty;
  }
}

const std::vector<TokenProb>& Sampler::distribution(const float* logits) {
  cand_.resize(n_vocab_);
  for (int64_t i = 0; i < n_vocab_; ++i) cand_[i] = {static_cast<int32_t>(i), logits[i], 0.0f};
  apply_penalties();
  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  if (p_.greedy()) {
    const Candidate best = *std::min_element(cand_.begin(), cand_.end(), by_logit);
    cand_.assign(1, {best.id, best.logit, 1.0f});
    return cand_;
  }

  size_t n = cand_.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) n = p_.top_k;
  std::partial_sort(cand_.begin(), cand_.begin() + n, cand_.end(), by_logit);
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
  return cand_;
}

double Sampler::uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

int32_t draw(const std::vector<TokenProb>& dist, double r) {
  double cum = 0;
  for (const auto& c : dist)
    if (r < (cum += c.p)) return c.id;
  return dist.back().id;
}

int32_t Sampler::sample(const float* logits) {
  distribution(logits);
  return p_.greedy() ? cand_[0].id : draw(cand_, uniform());
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
