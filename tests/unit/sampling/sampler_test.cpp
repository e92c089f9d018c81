// The sampler's filters and penalties on hand-made logits, and stop-string streaming.
#include "worker/sampling/sampler.h"

#include <gtest/gtest.h>

#include <map>
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
