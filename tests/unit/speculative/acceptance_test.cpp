// The speculative acceptance rules, prompt lookup and the draft length (worker/speculative).
#include "worker/speculative/acceptance.h"

#include <gtest/gtest.h>

#include "tests/unit/speculative/chi_square.h"
#include "worker/common/error.h"
#include "worker/speculative/drafter.h"

namespace clusterctl::speculative {
namespace {

TEST(AcceptGreedy, KeepsDraftsWhileTheyAreTheTargetsArgmaxThenAddsTheTargets) {
  EXPECT_EQ(accept_greedy({5, 6, 7}, {5, 6, 9, 1}).accepted, 2);
  EXPECT_EQ(accept_greedy({5, 6, 7}, {5, 6, 9, 1}).next, 9);
  EXPECT_EQ(accept_greedy({5, 6}, {5, 6, 8}).accepted, 2);
  EXPECT_EQ(accept_greedy({5, 6}, {5, 6, 8}).next, 8);  // all kept: the bonus token
  EXPECT_EQ(accept_greedy({}, {3}).next, 3);
  EXPECT_EQ(accept_greedy({4}, {3, 2}).accepted, 0);
  EXPECT_THROW(accept_greedy({4}, {3}), Error);
}

TEST(NgramDrafter, ProposesWhatFollowedTheLatestEarlierOccurrenceOfTheLongestSuffix) {
  NgramDrafter d;
  Draft out;
  // "1 2 3" occurred at 0 (then 4 5); "2 3" also at 6 (then 9): the longer match wins.
  d.propose(0, {1, 2, 3, 4, 5, 0, 2, 3, 9, 1, 2, 3}, 3, nullptr, out);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{4, 5, 0}));
  // Only "7" matches: at 1 and 3, the latest (3) proposes 8.
  d.propose(0, {0, 7, 6, 7, 8, 7}, 4, nullptr, out);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{8, 7}));  // up to the context's end
  d.propose(0, {1, 2, 3}, 4, nullptr, out);
  EXPECT_TRUE(out.tokens.empty());
  d.propose(0, {1, 1, 1}, 0, nullptr, out);
  EXPECT_TRUE(out.tokens.empty());
  EXPECT_TRUE(out.q.empty());  // deterministic: q is one-hot
}

TEST(DraftLength, FollowsTheAcceptanceRateAndTheRoundCost) {
  EXPECT_THROW(DraftLength(3, 2), Error);
  // Every draft kept, drafting free, a pass costing the same at any width: the most.
  DraftLength high(0, 8);
  for (int i = 0; i < 20; ++i) high.record(high.next(), high.next(), 1e-3, 0);
  EXPECT_EQ(high.next(), 8);
  // Every draft refused, drafting as dear as a pass, a pass as dear per token as decoding: none,
  // and only rare probes (no acceptance rate would make drafting pay: draft_rule_test.cpp).
  DraftLength low(0, 8);
  for (int i = 0; i < 20; ++i) low.record(low.next(), 0, 1e-3 * (1 + low.next()), 1e-3 * low.next());
  EXPECT_EQ(low.next(), 0);
  EXPECT_GE(low.probe_every(), 256);
  EXPECT_LT(low.acceptance(), 0.5);
  // --draft-min holds.
  DraftLength floor(2, 8);
  for (int i = 0; i < 20; ++i) floor.record(floor.next(), 0, 1e-3 * (1 + floor.next()), 1e-3 * floor.next());
  EXPECT_EQ(floor.next(), 2);
}

// Draws the first emitted token of a round many times: it must be distributed as p[0], whatever q.
std::vector<int64_t> first_tokens(const std::vector<sampling::TokenProb>& p0, const Draft& shape, int n_vocab,
                                  int trials, bool sample_draft) {
  sampling::SamplerParams sp;
  sp.seed = 12345;
  sampling::Sampler s(n_vocab, sp);
  std::vector<int64_t> counts(static_cast<size_t>(n_vocab), 0);
  const std::vector<std::vector<sampling::TokenProb>> p = {p0, p0};
  Draft d = shape;
  for (int t = 0; t < trials; ++t) {
    if (sample_draft) d.tokens = {sampling::draw(d.q[0], s.uniform())};
    const Verdict v = accept_sampled(d, p, s);
    ++counts[static_cast<size_t>(v.accepted > 0 ? d.tokens[0] : v.next)];
  }
  return counts;
}

std::vector<double> dense(const std::vector<sampling::TokenProb>& dist, int n_vocab) {
  std::vector<double> out(static_cast<size_t>(n_vocab), 0.0);
  for (const auto& c : dist) out[static_cast<size_t>(c.id)] = c.p;
  return out;
}

TEST(AcceptSampled, EmitsTheTargetsDistributionWhateverTheDraftsChiSquare) {
  const int V = 6, N = 200000;
  const std::vector<sampling::TokenProb> p = {{0, 0, 0.4f}, {1, 0, 0.3f}, {2, 0, 0.2f}, {3, 0, 0.1f}};
  // A draft model that overweights 3 and proposes 5, which the target never emits.
  Draft model;
  model.q = {{{3, 0, 0.5f}, {0, 0, 0.2f}, {5, 0, 0.2f}, {1, 0, 0.1f}}};
  const auto got = first_tokens(p, model, V, N, true);
  const auto c = test::chi_square(dense(p, V), got);
  EXPECT_LT(c.statistic, c.bound) << "df " << c.df;
  EXPECT_EQ(got[5], 0) << "a token outside the target's support was emitted";
  // The test can fail: emitting the draft's own tokens would be far beyond the bound.
  EXPECT_GT(test::non_centrality(dense(p, V), dense(model.q[0], V), N), 100 * c.bound);
  // Prompt lookup: a fixed token, q one-hot; kept with probability p(x).
  for (int32_t x : {0, 3, 4}) {
    Draft lookup;
    lookup.tokens = {x};
    const auto fixed = first_tokens(p, lookup, V, N, false);
    const auto cl = test::chi_square(dense(p, V), fixed);
    EXPECT_LT(cl.statistic, cl.bound) << "drafted " << x;
  }
}

}  // namespace
}  // namespace clusterctl::speculative
