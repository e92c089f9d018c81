// The sampler's filters and penalties on hand-made logits, and stop-string streaming.
#include "worker/sampling/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "worker/common/error.h"

namespace clusterctl::sampling {
namespace {

SamplerParams plain() {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

std::map<int32_t, int> histogram(Sampler& s, const std::vector<float>& logits, int n) {
  std::map<int32_t, int> h;
  for (int i = 0; i < n; ++i) ++h[s.sample(logits.data())];
  return h;
}

TEST(Sampler, GreedyTakesArgmaxLowestIdOnTies) {
  SamplerParams p;
  p.temperature = 0;
  Sampler s(5, p);
  std::vector<float> l = {0.1f, 2.0f, -1.0f, 2.0f, 1.9f};
  EXPECT_EQ(s.sample(l.data()), 1);
}

TEST(Sampler, TopKOneIsGreedy) {
  auto p = plain();
  p.top_k = 1;
  Sampler s(4, p);
  std::vector<float> l = {0.0f, 0.5f, 0.4f, 0.45f};
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(l.data()), 1);
}

TEST(Sampler, TopKLimitsCandidates) {
  auto p = plain();
  p.top_k = 2;
  Sampler s(4, p);
  std::vector<float> l = {1.0f, 1.1f, 0.9f, 1.05f};
  auto h = histogram(s, l, 400);
  for (auto [tok, n] : h) EXPECT_TRUE(tok == 1 || tok == 3) << tok;
  EXPECT_GT(h[1], 0);
  EXPECT_GT(h[3], 0);
}

TEST(Sampler, TopPKeepsSmallestSetReachingP) {
  auto p = plain();
  p.top_p = 0.7f;
  Sampler s(3, p);
  // probabilities ~ 0.665, 0.245, 0.09: 0.7 needs the first two.
  std::vector<float> l = {2.0f, 1.0f, 0.0f};
  auto h = histogram(s, l, 600);
  EXPECT_EQ(h.count(2), 0u);
  EXPECT_GT(h[0], h[1]);
  EXPECT_GT(h[1], 0);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  auto p = plain();
  p.min_p = 0.3f;
  Sampler s(3, p);
  std::vector<float> l = {2.0f, 1.0f, 0.0f};  // 0.09 / 0.665 < 0.3 < 0.245 / 0.665
  auto h = histogram(s, l, 600);
  EXPECT_EQ(h.count(2), 0u);
  EXPECT_GT(h[1], 0);
}

TEST(Sampler, LowTemperatureSharpens) {
  auto p = plain();
  p.temperature = 0.05f;
  Sampler s(3, p);
  std::vector<float> l = {1.0f, 0.8f, 0.0f};
  auto h = histogram(s, l, 300);
  EXPECT_GE(h[0], 295);
}

TEST(Sampler, SameSeedSameSequence) {
  auto p = plain();
  p.seed = 42;
  Sampler a(8, p), b(8, p);
  std::vector<float> l = {0.1f, 0.2f, 0.3f, 0.4f, 0.3f, 0.2f, 0.1f, 0.0f};
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(l.data()), b.sample(l.data()));
  p.seed = 43;
  Sampler c(8, p);
  a.reset();
  int differ = 0;
  for (int i = 0; i < 100; ++i) differ += a.sample(l.data()) != c.sample(l.data());
  EXPECT_GT(differ, 0);
}

TEST(Sampler, RepetitionPenaltyTurnsGreedyAway) {
  SamplerParams p;
  p.temperature = 0;
  p.repeat_penalty = 2.0f;
  Sampler s(3, p);
  std::vector<float> l = {1.0f, 0.8f, -1.0f};
  EXPECT_EQ(s.sample(l.data()), 0);
  s.accept(0);  // 1.0 / 2 = 0.5 < 0.8
  EXPECT_EQ(s.sample(l.data()), 1);
  s.accept(1);  // both penalised: 0.5 vs 0.4
  EXPECT_EQ(s.sample(l.data()), 0);
}

TEST(Sampler, NegativeLogitsArePenalisedByMultiplying) {
  SamplerParams p;
  p.temperature = 0;
  p.repeat_penalty = 3.0f;
  Sampler s(2, p);
  std::vector<float> l = {-1.0f, -2.5f};
  s.accept(0);  // -1 * 3 = -3 < -2.5
  EXPECT_EQ(s.sample(l.data()), 1);
}

TEST(Sampler, PresencePenaltySubtractsOncePerToken) {
  SamplerParams p;
  p.temperature = 0;
  p.presence_penalty = 0.5f;
  Sampler s(2, p);
  std::vector<float> l = {1.0f, 0.6f};
  s.accept(0);
  s.accept(0);  // twice, still one penalty: 0.5 < 0.6
  EXPECT_EQ(s.sample(l.data()), 1);
}

TEST(Sampler, PenaltyWindowForgetsOldTokens) {
  SamplerParams p;
  p.temperature = 0;
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  Sampler s(4, p);
  std::vector<float> l = {1.0f, 0.8f, 0.0f, 0.0f};
  s.accept(0);
  s.accept(2);
  s.accept(3);  // token 0 left the window
  EXPECT_EQ(s.sample(l.data()), 0);
}

TEST(Sampler, BadParametersAreRefused) {
  auto p = plain();
  p.repeat_penalty = 0;
  EXPECT_THROW(Sampler(4, p), Error);
  p = plain();
  p.top_p = 0;
  EXPECT_THROW(Sampler(4, p), Error);
}

TEST(Sampler, FrequencyPenaltyCountsGeneratedTokensOnly) {
  SamplerParams p;
  p.temperature = 0;
  p.frequency_penalty = 0.3f;
  Sampler s(2, p);
  std::vector<float> l = {1.0f, 0.5f};
  s.accept(0);  // a prompt token: not counted
  EXPECT_EQ(s.sample(l.data()), 0);
  s.accept(0, true);  // 1.0 - 0.3 = 0.7 > 0.5
  EXPECT_EQ(s.sample(l.data()), 0);
  s.accept(0, true);  // 1.0 - 0.6 = 0.4 < 0.5: the count matters
  EXPECT_EQ(s.sample(l.data()), 1);
}

TEST(Sampler, GeneratedPresencePenaltyIsOncePerGeneratedToken) {
  SamplerParams p;
  p.temperature = 0;
  p.generated_presence_penalty = 0.3f;
  Sampler s(2, p);
  std::vector<float> l = {1.0f, 0.6f};
  s.accept(0);  // the prompt does not count
  EXPECT_EQ(s.sample(l.data()), 0);
  s.accept(0, true);
  s.accept(0, true);  // twice, one penalty: 0.7 > 0.6
  EXPECT_EQ(s.sample(l.data()), 0);
  p.generated_presence_penalty = 0.5f;
  Sampler t(2, p);
  t.accept(0, true);  // 0.5 < 0.6
  EXPECT_EQ(t.sample(l.data()), 1);
}

TEST(Sampler, NegativePenaltiesFavourRepeats) {
  SamplerParams p;
  p.temperature = 0;
  p.frequency_penalty = -1.0f;
  Sampler s(2, p);
  std::vector<float> l = {0.5f, 1.0f};
  s.accept(0, true);  // 0.5 + 1 > 1
  EXPECT_EQ(s.sample(l.data()), 0);
}

TEST(Sampler, LogitBiasShiftsAndBans) {
  SamplerParams p;
  p.temperature = 0;
  p.logit_bias = {{2, 5.0f}};
  Sampler s(3, p);
  std::vector<float> l = {1.0f, 0.0f, -2.0f};
  EXPECT_EQ(s.sample(l.data()), 2);  // -2 + 5 = 3
  auto q = plain();
  q.logit_bias = {{0, -100.0f}};
  Sampler banned(3, q);
  std::vector<float> m = {10.0f, 0.0f, 0.0f};
  for (int i = 0; i < 200; ++i) EXPECT_NE(banned.sample(m.data()), 0);
  q.logit_bias = {{0, -100.0f}, {1, -100.0f}, {2, -100.0f}};
  Sampler none(3, q);
  EXPECT_THROW(none.sample(m.data()), Error);
}

TEST(Sampler, LogprobsAreTheModelsLogSoftmax) {
  SamplerParams p;
  p.temperature = 0;
  p.logprobs = 2;
  p.logit_bias = {{2, 10.0f}};  // changes the pick, not the reported model probabilities
  Sampler s(3, p);
  std::vector<float> l = {2.0f, 1.0f, 0.0f};
  TokenLogprobs lp;
  EXPECT_EQ(s.sample(l.data(), &lp), 2);
  const double lse = std::log(std::exp(2.0) + std::exp(1.0) + std::exp(0.0));
  EXPECT_EQ(lp.token, 2);
  EXPECT_NEAR(lp.logprob, 0.0 - lse, 1e-5);
  ASSERT_EQ(lp.top.size(), 2u);
  EXPECT_EQ(lp.top[0].first, 0);
  EXPECT_NEAR(lp.top[0].second, 2.0 - lse, 1e-5);
  EXPECT_EQ(lp.top[1].first, 1);
  EXPECT_NEAR(lp.top[1].second, 1.0 - lse, 1e-5);
}

// Allows only even ids; counts what it was asked.
class EvenOnly : public TokenConstraint {
 public:
  explicit EvenOnly(int* asked) : asked_(asked) {}
  bool allows(int32_t token) const override {
    ++*asked_;
    return token % 2 == 0;
  }
  void accept(int32_t) override {}

 private:
  int* asked_;
};

TEST(Sampler, ConstraintMasksTokensGreedyAndSampled) {
  int asked = 0;
  SamplerParams p;
  p.temperature = 0;
  Sampler g(6, p);
  g.set_constraint(std::make_unique<EvenOnly>(&asked));
  std::vector<float> l = {0.0f, 3.0f, 1.0f, 2.5f, 2.0f, 0.5f};
  EXPECT_EQ(g.sample(l.data()), 4);  // the best even id
  auto q = plain();
  Sampler s(6, q);
  s.set_constraint(std::make_unique<EvenOnly>(&asked));
  auto h = histogram(s, l, 500);
  for (auto [tok, n] : h) EXPECT_EQ(tok % 2, 0) << tok;
  EXPECT_GT(h[4], h[2]);
  EXPECT_GT(h[2], h[0]);
}

TEST(Sampler, ConstraintDoesNotChangeAnAllowedGreedyPick) {
  int asked = 0;
  SamplerParams p;
  p.temperature = 0;
  Sampler g(1000, p);
  g.set_constraint(std::make_unique<EvenOnly>(&asked));
  std::vector<float> l(1000, 0.0f);
  l[500] = 9.0f;
  EXPECT_EQ(g.sample(l.data()), 500);
  EXPECT_EQ(asked, 1);  // the best candidate was asked first and taken: no scan of the vocabulary
}

TEST(StopStrings, HoldsBackPossibleStartAndStops) {
  StopStrings st({"\nUser:"});
  EXPECT_EQ(st.feed("Hello"), "Hello");
  EXPECT_EQ(st.feed(" there\nUs"), " there");  // "\nUs" may start the stop string
  EXPECT_FALSE(st.stopped());
  EXPECT_EQ(st.feed("er: hi"), "");
  EXPECT_TRUE(st.stopped());
  EXPECT_EQ(st.flush(), "");
}

TEST(StopStrings, FalseAlarmIsReleased) {
  StopStrings st({"STOP"});
  EXPECT_EQ(st.feed("ST"), "");
  EXPECT_EQ(st.feed("AR"), "STAR");
  EXPECT_EQ(st.feed("S"), "");
  EXPECT_EQ(st.flush(), "S");
  EXPECT_FALSE(st.stopped());
}

}  // namespace
}  // namespace clusterctl::sampling
