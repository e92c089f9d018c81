// The draft length rule (worker/speculative/draft_rule.h) and the engine's DraftLength on top of
// it: deterministic costs in, the expected k and probe interval out.
#include "worker/speculative/draft_rule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "worker/speculative/acceptance.h"

namespace clusterctl::speculative {
namespace {

constexpr double ms = 1e-3;

// A pass over n tokens: `one` plus `per_token` for each token beyond the first.
DraftCosts costs(double a, double one, double per_token, double draft, double probe) {
  DraftCosts c;
  c.acceptance = a;
  c.pass_s = [one, per_token](int n) { return one + per_token * (n - 1); };
  c.draft_s_per_token = draft;
  c.probe_draft_s = [probe](int) { return probe; };
  return c;
}

TEST(DraftRule, ExpectedTokensOfARound) {
  EXPECT_DOUBLE_EQ(expected_tokens(0.5, 0), 1);
  EXPECT_DOUBLE_EQ(expected_tokens(0.5, 2), 1 + 0.5 + 0.25);
  EXPECT_NEAR(expected_tokens(1, 8), (1 - std::pow(0.999, 9)) / 0.001, 1e-9);  // a is held below 1
}

TEST(DraftRule, FreeDraftsAndAFlatPassDraftTheMost) {
  const DraftChoice d = choose_draft_length(costs(0.9, ms, 0, 0, 0), 0, 8);
  EXPECT_EQ(d.k, 8);
  EXPECT_EQ(d.probe_every, 0);
  EXPECT_NEAR(d.tokens_per_round, (1 - std::pow(0.9, 9)) / 0.1, 1e-12);
  EXPECT_DOUBLE_EQ(d.round_s, ms);
}

TEST(DraftRule, TheBestKBalancesAcceptanceAgainstDraftAndPassCost) {
  // a = 0.7, a pass 1 ms + 0.1 ms a token more, 0.1 ms a draft: tokens / time peaks at k = 3
  // (1 + .7 + .49 + .343 = 2.533 tokens in 1.6 ms = 1.583 a ms; k = 2: 2.19 / 1.4 = 1.564;
  // k = 4: 2.773 / 1.8 = 1.541).
  const DraftChoice d = choose_draft_length(costs(0.7, ms, 0.1 * ms, 0.1 * ms, 0), 0, 8);
  EXPECT_EQ(d.k, 3);
  EXPECT_NEAR(d.round_s, 1.6 * ms, 1e-12);
  // --draft-min and --draft-max bound it.
  EXPECT_EQ(choose_draft_length(costs(0.7, ms, 0.1 * ms, 0.1 * ms, 0), 5, 8).k, 5);
  EXPECT_EQ(choose_draft_length(costs(0.7, ms, 0.1 * ms, 0.1 * ms, 0), 0, 2).k, 2);
}

TEST(DraftRule, ADraftAsSlowAsTheModelNeverPaysAndIsProbedOnlyRarely) {
  // Every draft kept, but a draft costs a whole pass: k + 1 tokens take longer than k + 1 passes.
  // A probe only re-measures the costs, every kRareProbeEvery rounds (the 3 % rule alone: 16).
  const DraftChoice d = choose_draft_length(costs(1.0, ms, 0.05 * ms, ms, 0), 0, 8);
  EXPECT_EQ(d.k, 0);
  EXPECT_EQ(d.probe_every, kRareProbeEvery);
  // A pass as dear per token as plain decoding (compute-bound), drafts free: no gain either.
  EXPECT_EQ(choose_draft_length(costs(0.5, ms, ms, 0, 0), 0, 8).probe_every, kRareProbeEvery);
  // A dear probe: the 3 % rule's interval where it is rarer still ((20 + 1) / 0.03 = 700).
  EXPECT_EQ(choose_draft_length(costs(0.5, ms, ms, 0, 20 * ms), 0, 8).probe_every, 700);
}

TEST(DraftRule, ADraftThatCouldPayIsProbedAsRarelyAsKeepsProbesUnderThreePercent) {
  // Cheap drafts, almost none kept: k = 0, but at a higher rate drafting would pay, so probes.
  // A probe: 0.5 ms drafting + 0.1 ms for the wider pass = 0.6 ms, 3 % of 20 plain rounds.
  const DraftChoice d = choose_draft_length(costs(0.05, ms, 0.1 * ms, 0.05 * ms, 0.5 * ms), 0, 8);
  EXPECT_EQ(d.k, 0);
  EXPECT_EQ(d.probe_every, 20);
  // A dear probe (a draft model catching up): 10.1 ms / 0.03 ms = 337 rounds between probes.
  EXPECT_EQ(choose_draft_length(costs(0.05, ms, 0.1 * ms, 0.05 * ms, 10 * ms), 0, 8).probe_every, 337);
  // A free one (prompt lookup): the fewest rounds, 16.
  EXPECT_EQ(choose_draft_length(costs(0.05, ms, 0.1 * ms, 0, 0), 0, 8).probe_every, kMinProbeEvery);
  // --draft-max 0 never drafts; --draft-min 1 always does.
  EXPECT_EQ(choose_draft_length(costs(0.05, ms, 0.1 * ms, 0, 0), 0, 0).probe_every, 0);
  EXPECT_EQ(choose_draft_length(costs(0.05, ms, 0.1 * ms, 0, 0), 1, 8).k, 1);
}

TEST(DraftRule, AProbeWhoseCostGrowsWithTheGapSettlesWhereTheCatchUpIsBounded) {
  // Catching up costs 0.5 ms a missed token, at most kCatchUpMax of them, then kRestartTokens + 1.
  DraftCosts c = costs(0.05, ms, 0.1 * ms, 0.05 * ms, 0);
  c.probe_draft_s = [](int gap) { return 0.5 * ms * (gap > kCatchUpMax ? kRestartTokens + 1 : gap); };
  const DraftChoice d = choose_draft_length(c, 0, 8);
  // (33 x 0.5 + 0.1) / 0.03 = 553.3: past kCatchUpMax, so the catch-up is the restart's.
  EXPECT_EQ(d.probe_every, 554);
}

// The engine's DraftLength, fed rounds as decode_speculative feeds it.
struct Rounds {
  int drafted = 0, probes = 0;
};
Rounds run(DraftLength& length, int rounds, double accept, double one, double per_token, double draft) {
  Rounds r;
  for (int i = 0; i < rounds; ++i) {
    const int k = length.next();
    const int kept = static_cast<int>(std::floor(k * accept));
    r.drafted += k;
    r.probes += k == 1 ? 1 : 0;
    length.record(k, kept, one + per_token * k, i == 0 ? -1.0 : draft * k);
  }
  return r;
}

TEST(DraftLength, ADraftThatDoesNotPayStopsDraftingAndProbesOnlyRarely) {
  // Every draft kept, but each costs as much as a pass (a one-process draft of the model's size).
  DraftLength length(0, 8);
  run(length, 50, 1.0, ms, 0.05 * ms, ms);
  EXPECT_EQ(length.next(), 0);
  EXPECT_GE(length.probe_every(), kRareProbeEvery);
  // 1000 rounds: a few one-token probes, nothing else (the old rule probed every 16 rounds).
  const Rounds r = run(length, 1000, 1.0, ms, 0.05 * ms, ms);
  EXPECT_GE(r.probes, 1);
  EXPECT_LE(r.probes, 1000 / kRareProbeEvery + 1);
  EXPECT_EQ(r.drafted, r.probes);
}

TEST(DraftLength, CostsGrowingWithTheContextDoNotMakeOldMeasurementsLookCheap) {
  // Every pass and draft step grows with the context (attention): 1 % a round. A pass over k + 1
  // tokens costs 1 + 0.9 k plain passes, a draft step one: drafting never pays, whatever the round.
  DraftLength length(0, 8);
  int drafted = 0;
  for (int i = 0; i < 1000; ++i) {
    const double scale = 1 + i / 100.0;
    const int k = length.next();
    if (i >= 50) drafted += k;
    length.record(k, k, scale * ms * (1 + 0.9 * k), i == 0 ? -1.0 : scale * ms * k);
  }
  // Seconds measured at round 10 would make a pass over 9 tokens at round 500 look 5x cheaper
  // than 9 plain ones: kept in plain passes, only the rare probes draft.
  EXPECT_LE(drafted, 950 / kRareProbeEvery + 1);
}

TEST(DraftLength, APassSharedWithOtherSequencesCountsForTheAcceptanceOnly) {
  // serve: beside other sequences the step's time is not this sequence's pass (verify_s < 0).
  DraftLength length(0, 8);
  for (int i = 0; i < 10; ++i) length.record(8, 0, -1, -1);
  EXPECT_LT(length.acceptance(), 0.2);
  EXPECT_EQ(length.next(), kFirstDraft);  // no cost measured: its k is still the first round's
}

// The k of each of `rounds` rounds, every draft kept, passes of `one` plus `per_token` a token
// beyond the first, `draft` a drafted token (measured from the first round on, as
// decode_speculative measures a first round of two drafts apart from its catch-up).
std::vector<int> ks(DraftLength& length, int rounds, double one, double per_token, double draft) {
  std::vector<int> k;
  for (int i = 0; i < rounds; ++i) {
    k.push_back(length.next());
    length.record(k.back(), k.back(), one + per_token * k.back(), draft * k.back());
  }
  return k;
}

TEST(DraftLength, TheFirstRoundsStartSmallAndDoubleWhileDraftingPays) {
  // Cheap drafts, all kept: two drafts blind, a plain pass (the cost unit), then 4 and 8 as each
  // wider pass is measured before a wider one is tried (--draft-max 8 blind cost 8 drafts before).
  DraftLength paying(0, 8);
  EXPECT_EQ(ks(paying, 6, ms, 0.01 * ms, 0.02 * ms), (std::vector<int>{2, 0, 4, 8, 8, 8}));
  // --draft-max 3 and --draft-min 3 bound the growth as they bound k.
  DraftLength capped(0, 3);
  EXPECT_EQ(ks(capped, 4, ms, 0.01 * ms, 0.02 * ms), (std::vector<int>{2, 0, 3, 3}));
  DraftLength floor(3, 16);
  EXPECT_EQ(ks(floor, 4, ms, 0.01 * ms, 0.02 * ms), (std::vector<int>{3, 6, 12, 16}));
}

TEST(DraftLength, ADraftThatCannotPayCostsOneShortRound) {
  // The model as its own draft: every draft kept, but each costs a plain pass. Two drafts in the
  // first round, then only the rare probes (none in 200 rounds); --draft-max 8 blind drafted 8.
  DraftLength length(0, 8);
  const std::vector<int> k = ks(length, 200, ms, 0.05 * ms, ms);
  EXPECT_EQ(k[0], kFirstDraft);
  int drafted = 0;
  for (int ki : k) drafted += ki;
  EXPECT_EQ(drafted, kFirstDraft);
}

TEST(DraftRule, TheOpeningIsDraftLengthsOwnFirstRounds) {
  // What plan predicts a run's first rounds draft (opening_draft_lengths, then the settled k) is
  // what DraftLength drafts measuring the same costs, every draft kept: {2, 0, 4} then 8 (plan
  // counted 8 from the first round before), {2} then 0, {2, 0} then 3, {3, 6, 12} then 16.
  struct Case {
    int min, max;
    double per_token, draft;
    std::vector<int> opening;
    int settled;
  };
  for (const Case& t :
       {Case{0, 8, 0.01 * ms, 0.02 * ms, {2, 0, 4}, 8}, Case{0, 8, 0.05 * ms, ms, {2}, 0},
        Case{0, 3, 0.01 * ms, 0.02 * ms, {2, 0}, 3}, Case{3, 16, 0.01 * ms, 0.02 * ms, {3, 6, 12}, 16}}) {
    DraftCosts c;
    c.acceptance = 0.999;
    c.pass_s = [&t](int n) { return ms + t.per_token * (n - 1); };
    c.draft_s_per_token = t.draft;
    c.probe_draft_s = [&t](int gap) { return t.draft * (gap + 1); };
    const std::vector<int> opening = opening_draft_lengths(c, t.min, t.max);
    EXPECT_EQ(opening, t.opening);
    EXPECT_EQ(choose_draft_length(c, t.min, t.max).k, t.settled);
    std::vector<int> run = opening;
    run.resize(opening.size() + 3, t.settled);
    DraftLength length(t.min, t.max);
    EXPECT_EQ(ks(length, static_cast<int>(run.size()), ms, t.per_token, t.draft), run) << t.min << ".." << t.max;
  }
}

TEST(DraftLength, APayingDraftKeepsDrafting) {
  DraftLength length(0, 8);
  run(length, 50, 1.0, ms, 0.01 * ms, 0.02 * ms);
  EXPECT_EQ(length.next(), 8);
  EXPECT_GT(length.acceptance(), 0.9);
}

}  // namespace
}  // namespace clusterctl::speculative
