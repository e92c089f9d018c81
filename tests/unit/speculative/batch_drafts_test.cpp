// Drafts per sequence in a serving step (worker/speculative/batch_drafts.h): deterministic costs
// in, the expected drafts out; a wide batch drafts less.
#include "worker/speculative/batch_drafts.h"

#include <gtest/gtest.h>

#include <numeric>

#include "worker/speculative/draft_rule.h"

namespace clusterctl::speculative {
namespace {

constexpr double ms = 1e-3;

// A step over w generated tokens: `trip` (the round trips, once a pass) plus `per_token` each.
std::function<double(int)> step(double trip, double per_token) {
  return [trip, per_token](int w) { return trip + per_token * w; };
}

double rate(const std::vector<SequenceDrafts>& seqs, const std::vector<int>& k, const std::function<double(int)>& pass,
            double draft) {
  double tokens = 0;
  int width = 0, drafts = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    tokens += expected_tokens(seqs[i].acceptance, k[i]);
    width += 1 + k[i];
    drafts += k[i];
  }
  return tokens / (pass(width) + drafts * draft);
}

TEST(AllotDrafts, OneSequenceGetsTheRulesK) {
  // As DraftRule.TheBestKBalancesAcceptanceAgainstDraftAndPassCost: k = 3.
  const auto pass = step(0.9 * ms, 0.1 * ms);
  EXPECT_EQ(allot_drafts({{0.7, 0, 8}}, 0, pass, 0.1 * ms, 512), (std::vector<int>{3}));
  DraftCosts c;
  c.acceptance = 0.7;
  c.pass_s = pass;
  c.draft_s_per_token = 0.1 * ms;
  c.probe_draft_s = [](int) { return 0.0; };
  EXPECT_EQ(choose_draft_length(c, 0, 8).k, 3);
}

TEST(AllotDrafts, AWideBatchDraftsLessThanOneSequence) {
  // Round trips of 1 ms a pass, 0.1 ms a token: alone a sequence keeping 70 % drafts 3; eight of
  // them have shared the round trips already, and each drafts at most 1 (the best of any count).
  const auto pass = step(0.9 * ms, 0.1 * ms);
  const std::vector<SequenceDrafts> eight(8, {0.7, 0, 8});
  const std::vector<int> k = allot_drafts(eight, 0, pass, 0.1 * ms, 512);
  for (int ki : k) EXPECT_LE(ki, 1);
  for (int uniform = 0; uniform <= 8; ++uniform)
    EXPECT_GE(rate(eight, k, pass, 0.1 * ms), rate(eight, std::vector<int>(8, uniform), pass, 0.1 * ms) - 1e-9);
  // No round trip at all (a pass costs per token): nobody drafts.
  EXPECT_EQ(allot_drafts(eight, 0, step(0, 0.1 * ms), 0, 512), std::vector<int>(8, 0));
  // All round trip, free drafts: every sequence drafts the most.
  EXPECT_EQ(allot_drafts(eight, 0, step(ms, 0.001 * ms), 0, 512), std::vector<int>(8, 8));
  // ... within the step's size: 8 x 9 > 40 generated tokens.
  const std::vector<int> capped = allot_drafts(eight, 0, step(ms, 0.001 * ms), 0, 40);
  EXPECT_EQ(std::accumulate(capped.begin(), capped.end(), 0), 40 - 8);
}

TEST(AllotDrafts, DraftsGoWhereTheyAreLikelierKeptAndTheBoundsHold) {
  const auto pass = step(0.9 * ms, 0.1 * ms);
  const std::vector<int> k =
      allot_drafts({{0.95, 0, 8}, {0.2, 0, 8}, {0.2, 2, 8}, {0.95, 0, 1}}, 3, pass, 0.05 * ms, 512);
  EXPECT_GT(k[0], k[1]);
  EXPECT_EQ(k[1], 0);
  EXPECT_EQ(k[2], 2);  // its --draft-min
  EXPECT_EQ(k[3], 1);  // its budget
}

TEST(WidthCosts, MeasuredInterpolatedAndPreemptedStepsDiscounted) {
  WidthCosts w(16);
  EXPECT_DOUBLE_EQ(w.pass_s(3), 1.0);  // nothing measured
  w.record(4, 4 * ms);
  EXPECT_DOUBLE_EQ(w.pass_s(2), 2 * ms);  // below: in proportion
  EXPECT_DOUBLE_EQ(w.pass_s(9), 4 * ms);  // above: flat
  w.record(12, 6 * ms);
  EXPECT_DOUBLE_EQ(w.pass_s(8), 5 * ms);   // between: a line
  EXPECT_DOUBLE_EQ(w.pass_s(40), 6 * ms);  // past max_width: the last
  w.record(4, 3 * ms);                     // the second pass at a width replaces a slower first
  EXPECT_DOUBLE_EQ(w.pass_s(4), 3 * ms);
  w.record(4, 400 * ms);  // one preempted step: the median of the last three
  EXPECT_DOUBLE_EQ(w.pass_s(4), 4 * ms);
  w.record(4, 8 * ms);  // a lasting change (a longer context) gets through at once
  w.record(4, 8 * ms);
  EXPECT_DOUBLE_EQ(w.pass_s(4), 8 * ms);
}

TEST(ProbeEvery, OnlyWhereDraftingCouldPayAndScaledToTheProbesCost) {
  // A pass costing per token: drafting never pays, only rare probes.
  EXPECT_EQ(probe_every(step(0, 0.1 * ms), 4, 4, 8, 0, 0), kRareProbeEvery);
  // Round trips: free probes come every 16 steps; dear ones (1 ms each, 4 sequences, steps of
  // 1.4 ms): ceil(4 x (1 + 0.1) / (0.03 x 1.4)) = 105.
  EXPECT_EQ(probe_every(step(ms, 0.1 * ms), 4, 4, 8, 0, 0), kMinProbeEvery);
  EXPECT_EQ(probe_every(step(ms, 0.1 * ms), 4, 4, 8, 0.01 * ms, ms), 105);
}

TEST(BatchDrafting, CostsGrowingWithTheContextDoNotMakeOldMeasurementsLookCheap) {
  // Four sequences keeping every draft, each step and draft step 1 % slower a step (attention):
  // a step over w tokens costs 1 + 0.9 (w - 1) one-token passes and a draft one, so four
  // sequences' plain step gives 4 tokens in 3.7 passes, and no draft can pay.
  BatchDrafting batch(64, 8, false);
  const std::vector<SequenceDrafts> four(4, {0.95, 0, 8});
  std::vector<int> idle(4, 0);
  int drafted = 0;
  for (int i = 0; i < 1000; ++i) {
    const double scale = 1 + i / 100.0;
    const std::vector<int> k = batch.drafts(4, four, idle);
    int width = 4;
    for (size_t s = 0; s < k.size(); ++s) {
      width += k[s];
      if (k[s] > 0) batch.record_draft(4, idle[s] > 0 ? -1 : scale * ms, idle[s] > 0 ? scale * ms * k[s] : -1);
      idle[s] = k[s] > 0 ? 0 : idle[s] + 1;
      if (i >= 50) drafted += k[s];
    }
    batch.record_step(4, width, scale * ms * (1 + 0.9 * (width - 1)));
  }
  // Seconds measured at step 1 (its blind drafts) would make a wide step at step 500 look cheap
  // beside today's plain one (they drafted 264 tokens): kept in plain steps, only the rare probes
  // draft, one token a sequence.
  EXPECT_LE(drafted, 4 * (950 / kRareProbeEvery + 1));
}

TEST(BatchDrafting, AStepOfANewCountOfSequencesIsPlainFirstThenDraftsByItsCosts) {
  // Round trips of 0.9 ms a step, 0.01 ms a token, drafts almost free: the first step of eight
  // sequences measures the unit (0.98 ms), the next drafts by allot_drafts over the costs in it.
  BatchDrafting batch(512, 8, false);
  const std::vector<SequenceDrafts> eight(8, {0.7, 0, 8});
  const std::vector<int> idle(8, 0);
  EXPECT_EQ(batch.drafts(8, eight, idle), std::vector<int>(8, 0));
  batch.record_step(8, 8, 0.98 * ms);
  batch.record_step(8, 80, 1.7 * ms);
  batch.record_draft(8, 0.001 * ms, -1);
  const std::vector<int> k = batch.drafts(8, eight, idle);
  EXPECT_EQ(k, allot_drafts(eight, 0, step(0.9 / 0.98, 0.01 / 0.98), 0.001 / 0.98, 512));
  EXPECT_GT(std::accumulate(k.begin(), k.end(), 0), 8);
  // Another count of sequences starts with a plain step of its own.
  EXPECT_EQ(batch.drafts(3, std::vector<SequenceDrafts>(3, {0.7, 0, 8}), {0, 0, 0}), std::vector<int>(3, 0));
}

// Steps of `seqs.size()` sequences (acceptance as given, every draft kept) through `batch`: a step
// over w generated tokens costs pass(w), a drafted token `draft`, recorded as the scheduler
// records them (a sequence's first drafts and drafts every step per token, after steps without
// drafts as a probe). Each step's drafts, by sequence.
std::vector<std::vector<int>> steps(BatchDrafting& batch, const std::vector<SequenceDrafts>& seqs, int count,
                                    const std::function<double(int)>& pass, double draft) {
  const int n = static_cast<int>(seqs.size());
  std::vector<int> idle(seqs.size(), 0);
  std::vector<bool> drafted_before(seqs.size(), false);
  std::vector<std::vector<int>> out;
  for (int i = 0; i < count; ++i) {
    const std::vector<int> k = batch.drafts(n, seqs, idle);
    int width = n;
    for (size_t s = 0; s < k.size(); ++s) {
      width += k[s];
      const bool probe = drafted_before[s] && idle[s] > 0;
      if (k[s] > 0) batch.record_draft(n, probe ? -1 : draft, probe ? draft * k[s] : -1);
      drafted_before[s] = drafted_before[s] || k[s] > 0;
      idle[s] = k[s] > 0 ? 0 : idle[s] + 1;
    }
    batch.record_step(n, width, pass(width));
    out.push_back(k);
  }
  return out;
}

TEST(BatchDrafting, ANewCountOfSequencesDraftsTwoEachAfterItsPlainStepThenDoublesWhileDraftingPays) {
  // Four sequences keeping 95 %, round trips of 0.9 ms a step, drafts almost free: each sequence
  // drafts {0, 2, 4, 8, 8} (the plain step, the cost unit, then as one sequence alone grows), each
  // wider step measured before a wider one is tried. The old rule drafted {0, 8, 8, 8, 8}: eight
  // each, blind, right after the plain step.
  BatchDrafting batch(512, 8, false);
  const auto k = steps(batch, std::vector<SequenceDrafts>(4, {0.95, 0, 8}), 5, step(0.9 * ms, 0.01 * ms), 0.001 * ms);
  const std::vector<std::vector<int>> want = {{0, 0, 0, 0}, {2, 2, 2, 2}, {4, 4, 4, 4}, {8, 8, 8, 8}, {8, 8, 8, 8}};
  EXPECT_EQ(k, want);
  // --draft-min 3 (seconds as the unit, no plain step): from the floor, doubling.
  BatchDrafting floor(512, 16, true);
  const auto f = steps(floor, std::vector<SequenceDrafts>(2, {0.95, 3, 16}), 4, step(0.9 * ms, 0.01 * ms), 0.001 * ms);
  EXPECT_EQ(f, (std::vector<std::vector<int>>{{3, 3}, {6, 6}, {12, 12}, {16, 16}}));
}

TEST(BatchDrafting, ADraftThatCannotPayCostsEachSequenceOneShortStep) {
  // The model as its own draft: every draft kept, but a drafted token costs a plain step. After the
  // plain step each sequence drafts kFirstDraft once, then none (no probe within 200 steps). The
  // old rule drafted 8 each blind after the plain step: 32 tokens, 4 x 8 plain steps of drafting.
  BatchDrafting batch(512, 8, false);
  const auto pass = step(0.9 * ms, 0.05 * ms);
  const auto k = steps(batch, std::vector<SequenceDrafts>(4, {1.0, 0, 8}), 200, pass, pass(4));
  EXPECT_EQ(k[1], std::vector<int>(4, kFirstDraft));
  int drafted = 0;
  for (const auto& step_k : k) drafted += std::accumulate(step_k.begin(), step_k.end(), 0);
  EXPECT_EQ(drafted, 4 * kFirstDraft);
}

TEST(BatchDrafting, AStepWideEnoughToHideTheRoundTripsDraftsLessOnceItsCostsAreMeasured) {
  // Round trips of 0.9 ms a pass, 0.1 ms a token, drafts 0.1 ms: one sequence alone settles at
  // k = 3 (AllotDrafts.OneSequenceGetsTheRulesK), eight sequences, past their first steps, at
  // most one each.
  const auto pass = step(0.9 * ms, 0.1 * ms);
  BatchDrafting one(512, 8, false), eight(512, 8, false);
  EXPECT_EQ(steps(one, {{0.7, 0, 8}}, 8, pass, 0.1 * ms).back(), std::vector<int>{3});
  const auto k = steps(eight, std::vector<SequenceDrafts>(8, {0.7, 0, 8}), 8, pass, 0.1 * ms);
  for (int ki : k.back()) EXPECT_LE(ki, 1);
}

}  // namespace
}  // namespace clusterctl::speculative
