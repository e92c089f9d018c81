#include "worker/speculative/draft_rule.h"

#include <algorithm>
#include <cmath>

namespace clusterctl::speculative {

double expected_tokens(double a, int k) {
  a = std::clamp(a, 0.0, 0.999);
  return (1 - std::pow(a, k + 1)) / (1 - a);
}

int first_draft_length(int min, int max) { return std::clamp(kFirstDraft, min, std::max(min, max)); }

int grown_draft_length(int chosen, int reach, int min, int first) {
  return std::max(min, std::min(chosen, reach > 0 ? kGrowth * reach : first));
}

DraftChoice choose_draft_length(const DraftCosts& c, int min, int max) {
  const double per_draft = std::max(c.draft_s_per_token, 0.0);
  DraftChoice best;
  double best_rate = -1;
  for (int k = min; k <= max; ++k) {
    const double tokens = expected_tokens(c.acceptance, k), round_s = c.pass_s(k + 1) + k * per_draft;
    if (tokens / round_s > best_rate * (1 + 1e-9)) {
      best_rate = tokens / round_s;
      best = {k, 0, tokens, round_s};
    }
  }
  if (best.k > 0 || max == 0) return best;
  // Would drafting pay were every draft kept? If not, no acceptance rate makes it pay at these
  // costs: only rare probes, which measure them again.
  const double plain_s = c.pass_s(1);
  bool could_pay = false;
  for (int k = 1; k <= max && !could_pay; ++k)
    could_pay = (k + 1) / (c.pass_s(k + 1) + k * per_draft) > (1 + kPaysMargin) / plain_s;
  // A probe costs its drafting and the wider pass: as rarely as keeps that within kProbeShare of
  // the plain rounds between probes (the cost may grow with the gap: a few fixed-point steps).
  const double wider_s = std::max(c.pass_s(2) - plain_s, 0.0);
  int every = kMinProbeEvery;
  for (int i = 0; i < 8; ++i) {
    const double need = (std::max(c.probe_draft_s(every), 0.0) + wider_s) / (kProbeShare * plain_s);
    every = static_cast<int>(
        std::clamp(std::ceil(need), static_cast<double>(kMinProbeEvery), static_cast<double>(kMaxProbeEvery)));
  }
  best.probe_every = could_pay ? every : std::max(every, kRareProbeEvery);
  return best;
}

std::vector<int> opening_draft_lengths(const DraftCosts& c, int min, int max) {
  std::vector<int> opening;
  int k = first_draft_length(min, max), widest = 0;
  bool unit = min > 0;  // --draft-min above 0: no plain pass ever runs, seconds are the unit
  // widest grows to max + 1 at most, and past it the costs seen are c's: k settles within that.
  for (int round = 0; round < 2 * max + 8; ++round) {
    opening.push_back(k);
    widest = std::max(widest, k + 1);
    unit = unit || k == 0;
    int next = min;  // no plain pass measured yet: one next
    if (unit) {
      DraftCosts seen = c;
      seen.pass_s = [&c, widest](int n) { return c.pass_s(std::min(n, widest)); };
      next = grown_draft_length(choose_draft_length(seen, min, max).k, widest - 1, min);
    }
    if (unit && next == k) break;  // this round's k is measured and chosen again: settled
    k = next;
  }
  opening.pop_back();  // the first settled round
  return opening;
}

}  // namespace clusterctl::speculative
