#pragma once
// Pearson's chi-square goodness-of-fit test for the statistical tests of speculative sampling.
//
// The bound: cells whose expected count is below 5 are pooled (the chi-square approximation holds
// for expected counts of 5 or more); the statistic is compared with the chi-square quantile for
// a false-alarm probability of 1e-6 (Wilson-Hilferty: df (1 - 2/(9 df) + z sqrt(2/(9 df)))^3,
// z = 4.753). A correct sampler fails such a test with probability about 1e-6 per run; a sampler
// whose distribution is off by d fails it once N sum d^2/p (the non-centrality) is well above the
// bound, which each test checks for the error it guards against.
#include <cmath>
#include <cstdint>
#include <vector>

namespace clusterctl::test {

struct ChiSquare {
  double statistic = 0;
  double bound = 0;  // the 1e-6 quantile for `df`
  int df = 0;
};

inline double chi_square_bound(int df) {
  const double z = 4.753, a = 2.0 / (9.0 * df);
  return df * std::pow(1 - a + z * std::sqrt(a), 3);
}

// `expected`: probabilities of the cells (summing to 1); `observed`: counts (same cells).
inline ChiSquare chi_square(const std::vector<double>& expected, const std::vector<int64_t>& observed) {
  int64_t n = 0;
  for (auto o : observed) n += o;
  ChiSquare r;
  double pooled_e = 0, pooled_o = 0;
  int cells = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double e = expected[i] * static_cast<double>(n);
    if (e < 5) {
      pooled_e += e;
      pooled_o += static_cast<double>(observed[i]);
      continue;
    }
    r.statistic += (observed[i] - e) * (observed[i] - e) / e;
    ++cells;
  }
  if (pooled_e > 0) {
    r.statistic += (pooled_o - pooled_e) * (pooled_o - pooled_e) / std::max(pooled_e, 1.0);
    ++cells;
  }
  r.df = std::max(1, cells - 1);
  r.bound = chi_square_bound(r.df);
  return r;
}

// N sum (q - p)^2 / p: the statistic's expected excess when the samples come from q instead of p.
inline double non_centrality(const std::vector<double>& p, const std::vector<double>& q, int64_t n) {
  double s = 0;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0) s += (q[i] - p[i]) * (q[i] - p[i]) / p[i];
  return s * static_cast<double>(n);
}

}  // namespace clusterctl::test
