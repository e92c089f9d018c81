#include "worker/speculative/acceptance.h"

#include <algorithm>
#include <cmath>

#include "worker/common/error.h"
#include "worker/speculative/batch_drafts.h"
#include "worker/speculative/draft_rule.h"

namespace clusterctl::speculative {
namespace {

double prob_of(const std::vector<sampling::TokenProb>& dist, int32_t id) {
  for (const auto& c : dist)
    if (c.id == id) return c.p;
  return 0.0;
}

// Running averages weigh the latest round this much: k follows a change of text within a few rounds.
constexpr double kDecay = 0.9;

}  // namespace

Verdict accept_greedy(const std::vector<int32_t>& drafts, const std::vector<int32_t>& target_best) {
  if (target_best.size() != drafts.size() + 1) throw Error("speculative verification lost a row of logits");
  Verdict v;
  while (v.accepted < static_cast<int>(drafts.size()) && drafts[v.accepted] == target_best[v.accepted]) ++v.accepted;
  v.next = target_best[v.accepted];
  return v;
}

Verdict accept_sampled(const Draft& draft, const std::vector<std::vector<sampling::TokenProb>>& p,
                       sampling::Sampler& sampler) {
  const int k = static_cast<int>(draft.tokens.size());
  if (static_cast<int>(p.size()) != k + 1) throw Error("speculative verification lost a row of logits");
  Verdict v;
  for (; v.accepted < k; ++v.accepted) {
    const int32_t x = draft.tokens[v.accepted];
    const double px = prob_of(p[v.accepted], x);
    const double qx = draft.q.empty() ? 1.0 : prob_of(draft.q[v.accepted], x);
    if (qx > 0 && sampler.uniform() * qx < px) continue;  // kept with probability min(1, px / qx)
    // Refused: draw from the residual norm(max(0, p - q)).
    std::vector<sampling::TokenProb> residual;
    double total = 0;
    for (const auto& c : p[v.accepted]) {
      const double q = draft.q.empty() ? (c.id == x ? 1.0 : 0.0) : prob_of(draft.q[v.accepted], c.id);
      const double r = std::max(0.0, static_cast<double>(c.p) - q);
      if (r > 0) {
        residual.push_back({c.id, c.logit, static_cast<float>(r)});
        total += r;
      }
    }
    if (residual.empty()) {  // p == q up to rounding: any draw from p is exact
      v.next = sampling::draw(p[v.accepted], sampler.uniform());
      return v;
    }
    for (auto& c : residual) c.p = static_cast<float>(c.p / total);
    v.next = sampling::draw(residual, sampler.uniform());
    return v;
  }
  v.next = sampling::draw(p[k], sampler.uniform());
  return v;
}

DraftLength::DraftLength(int min, int max)
    : min_(min), max_(max), k_(first_draft_length(min, max)), costs_(1, max + 1, min > 0) {
  if (min < 0 || max < min)
    throw Error("--draft-min " + std::to_string(min) + " and --draft-max " + std::to_string(max) +
                " do not make a range: give 0 <= --draft-min <= --draft-max");
  if (max > 64) throw Error("--draft-max " + std::to_string(max) + " is too large: at most 64 tokens per round");
}

double DraftLength::acceptance() const { return (kept_ + 1) / (kept_ + refused_ + 2); }

void DraftLength::record(int drafted, int accepted, double verify_s, double draft_s) {
  if (drafted > 0) {  // a round without drafts says nothing about them
    kept_ = kDecay * kept_ + accepted;
    refused_ = kDecay * refused_ + (accepted < drafted ? 1 : 0);
  }
  if (verify_s < 0) {  // the pass was shared with other sequences: it says nothing of this one's cost
    rounds_without_draft_ = drafted > 0 ? 0 : rounds_without_draft_ + 1;
    return;
  }
  if (drafted >= 0 && drafted <= max_) {
    // Costs are kept in plain passes (PlainUnitCosts): until one is measured (--draft-min 0: the
    // second round) they wait; with --draft-min above 0 no plain pass is ever measured, and
    // seconds are the unit.
    costs_.record_pass(drafted + 1, verify_s);
    // After rounds without drafts the drafter caught up their tokens first: a probe's cost, not
    // what a drafted token costs while drafting every round.
    if (drafted > 0 && draft_s >= 0)
      rounds_without_draft_ > 0 ? costs_.record_draft(-1, draft_s) : costs_.record_draft(draft_s / drafted, -1);
  }
  rounds_without_draft_ = drafted > 0 ? 0 : rounds_without_draft_ + 1;
  choose();
}

int DraftLength::next() const {
  // k = 0 measures nothing about drafting: now and then one draft checks whether it pays again.
  return k_ == 0 && probe_every_ > 0 && rounds_without_draft_ >= probe_every_ ? 1 : k_;
}

void DraftLength::choose() {
  if (costs_.waiting()) {  // no plain pass measured yet: measure one
    k_ = min_;
    probe_every_ = 0;
    return;
  }
  DraftCosts c;
  c.acceptance = acceptance();
  c.pass_s = [this](int n) { return costs_.pass(n); };
  c.draft_s_per_token = std::max(costs_.draft_per_token(), 0.0);
  c.probe_draft_s = [probe_s = costs_.probe_draft()](int) { return probe_s; };
  const DraftChoice d = choose_draft_length(c, min_, max_);
  // Passes wider than the widest measured are only guessed: the most a measured round drafted.
  k_ = grown_draft_length(d.k, costs_.widest() - 1, min_);
  probe_every_ = d.probe_every;
}

}  // namespace clusterctl::speculative
