#pragma once
// Comparing logit rows with llama.cpp's (or one rank's with N ranks'): KL divergence of softmaxes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace clusterctl::test {

// KL(p || q) of the softmaxes of two logit rows of n entries, in double.
inline double kl_divergence(const float* p_logits, const float* q_logits, int64_t n) {
  auto log_softmax = [n](const float* l, std::vector<double>& out) {
    double mx = l[0];
    for (int64_t i = 1; i < n; ++i) mx = std::max(mx, double(l[i]));
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += std::exp(l[i] - mx);
    const double lse = mx + std::log(sum);
    out.resize(n);
    for (int64_t i = 0; i < n; ++i) out[i] = l[i] - lse;
  };
  std::vector<double> lp, lq;
  log_softmax(p_logits, lp);
  log_softmax(q_logits, lq);
  double kl = 0;
  for (int64_t i = 0; i < n; ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return kl;
}

}  // namespace clusterctl::test
