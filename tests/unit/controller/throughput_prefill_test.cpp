// The planner's prompt pass (controller/placement/throughput_model.h): the LM head paid once per
// prompt, and the work besides the matmuls (attention over the positions each token attends, the
// element-wise loops) at the node's measured rates. Arithmetic only: no speed of this machine is
// measured or asserted here.
#include <gtest/gtest.h>

#include "controller/placement/throughput_model.h"
#include "worker/model/attention_head.h"

using namespace clusterctl;
using namespace clusterctl::placement;

namespace {

// One node of 100 GB/s, 1000 GFLOPS (tiles) and 100 (matrix-vector), one rank of 1 GB and 0.5 G
// weights, 0.1 G of them its LM head's.
ClusterModel one_rank() {
  ClusterModel m;
  m.nodes.push_back({100, 1000, 100});
  m.ranks.push_back({0, 1e9, 0, 0, 0.5e9, 0});
  m.ranks[0].lm_head_params = 0.1e9;
  m.shared_memory = {"shared-memory", 10, 4};
  return m;
}

// Measured rates: a head costs 100 ns and 1 ns a position at 64 dimensions, 150 and 2 at 128.
NodeSpeed with_vector_rates(NodeSpeed n) {
  n.attention_head_s[0] = 100e-9, n.attention_head_s[1] = 150e-9;
  n.attention_position_s[0] = 1e-9, n.attention_position_s[1] = 2e-9;
  n.silu_s = 4e-9, n.norm_s = 0.5e-9;
  return n;
}

PassTimes prompt(const ClusterModel& m, int tokens) {
  return pass_times(m, Algorithm::one_shot, WireFormat::f64, tokens, true);
}

}  // namespace

TEST(ThroughputPrefill, APromptPaysItsLmHeadOnceForItsLastToken) {
  const ClusterModel m = one_rank();
  for (int tokens : {64, 512}) {
    const PassTimes t = prompt(m, tokens);
    // The other 0.4 G weights for every token at the tile rate, the LM head's 0.1 G for one token,
    // whose tile of one runs at the matrix-vector rate.
    const double expected =
        2.0 * tokens * 0.4e9 * prompt_seconds_per_flop(m.nodes[0], tokens) + 2.0 * 0.1e9 * (1 / 100e9);
    EXPECT_NEAR(t.compute_s, expected, 1e-12) << tokens << " tokens";
  }
  // A decode or verify pass wants every token's logits: the LM head for each of them.
  const PassTimes verify = pass_times(m, Algorithm::one_shot, WireFormat::f64, 4, false);
  EXPECT_NEAR(verify.compute_s, 2.0 * 4 * 0.5e9 / 100e9, 1e-12);
}

TEST(ThroughputPrefill, AttentionGrowsWithThePositionsEachTokenAttends) {
  NodeVectorWork v = vector_work(with_vector_rates({100, 1000, 100}));
  ASSERT_TRUE(v.measured);
  EXPECT_DOUBLE_EQ(v.attention_item_s(64, 10), 100e-9 + 10 * 1e-9);
  EXPECT_DOUBLE_EQ(v.attention_item_s(128, 10), 150e-9 + 10 * 2e-9);
  EXPECT_NEAR(v.attention_item_s(96, 10), 125e-9 + 10 * 1.5e-9, 1e-18);  // between them
  // One thread: token t of a prompt attends t + 1 positions, each of `heads` heads.
  const int64_t heads = 8;
  for (int64_t T : {64, 512}) {
    const double one = attention_layer_s(v, T, 0, heads, 64, 1);
    EXPECT_NEAR(one, heads * (T * 100e-9 + T * (T + 1) / 2 * 1e-9), 1e-15) << T;
  }
  // Quadratic in the prompt's length: 8x the tokens, well over 8x the time.
  EXPECT_GT(attention_layer_s(v, 512, 0, heads, 64, 1), 20 * attention_layer_s(v, 64, 0, heads, 64, 1));
  // A decode token after 127 positions attends 128.
  EXPECT_NEAR(attention_layer_s(v, 1, 127, heads, 64, 1), heads * (100e-9 + 128e-9), 1e-18);
}

TEST(ThroughputPrefill, TheLastThreadsTakeThePromptsLaterTokens) {
  const NodeVectorWork v = vector_work(with_vector_rates({100, 1000, 100}));
  const int64_t T = 64, heads = 8;
  // Two threads: tokens 0-31 and 32-63, as model::attention_items cuts the items; the second
  // attends positions 33..64.
  ASSERT_EQ(model::attention_items(T * heads, 1, 2).begin, 32 * heads);
  double second = 0;
  for (int64_t t = 32; t < 64; ++t) second += heads * v.attention_item_s(64, t + 1);
  EXPECT_NEAR(attention_layer_s(v, T, 0, heads, 64, 2), second, 1e-15);
  // More than half of one thread's time: the even split's 50 % is not what the engine gets.
  EXPECT_GT(attention_layer_s(v, T, 0, heads, 64, 2), 0.55 * attention_layer_s(v, T, 0, heads, 64, 1));
  // Too little work to wake the pool (model::attention_on_pool): one thread does it all.
  EXPECT_DOUBLE_EQ(attention_layer_s(v, 1, 0, 2, 64, 2), attention_layer_s(v, 1, 0, 2, 64, 1));
}

TEST(ThroughputPrefill, APromptPassAddsItsAttentionAndElementwiseWork) {
  ClusterModel m = one_rank();
  m.nodes[0] = with_vector_rates(m.nodes[0]);
  m.nodes[0].threads = 2;
  RankWork& r = m.ranks[0];
  r.attention_layers = 16, r.attention_heads = 32, r.head_dim = 64;
  r.silu_elements = 16 * 8192, r.norm_elements = 16 * 12288;
  const NodeVectorWork v = vector_work(m.nodes[0]);
  for (int tokens : {64, 512}) {
    const PassTimes t = prompt(m, tokens);
    EXPECT_NEAR(t.attention_s, 16 * attention_layer_s(v, tokens, 0, 32, 64, 2), 1e-12) << tokens;
    EXPECT_NEAR(t.elementwise_s, tokens * (16 * 8192 * 4e-9 + 16 * 12288 * 0.5e-9) / 2, 1e-12) << tokens;
    EXPECT_NEAR(t.total(), t.overlapped_s() + t.meetings_s + t.attention_s + t.elementwise_s, 1e-12);
  }
  // The share of a pass it takes grows with the prompt (attention's positions).
  const PassTimes p64 = prompt(m, 64), p512 = prompt(m, 512);
  EXPECT_GT(p512.non_matmul_s() / p512.total(), p64.non_matmul_s() / p64.total());
  // Where it is the largest term, it is the pass's limit.
  m.nodes[0].attention_position_s[0] = m.nodes[0].attention_position_s[1] = 1e-6;
  EXPECT_EQ(prompt(m, 512).limit(), Term::non_matmul);
  EXPECT_STREQ(term_name(Term::non_matmul), "non-matmul");
}

TEST(ThroughputPrefill, ANodeWithoutMeasuredRatesFallsBackToItsMatrixVectorRate) {
  NodeSpeed n{100, 1000, 100};
  n.threads = 4;
  const NodeVectorWork v = vector_work(n);
  EXPECT_FALSE(v.measured);
  const double flop_s = 4 / 100e9;  // one of its 4 threads' share
  EXPECT_DOUBLE_EQ(v.silu_s, kVectorWorkFallback.silu * flop_s);
  EXPECT_DOUBLE_EQ(v.norm_s, kVectorWorkFallback.norm * flop_s);
  EXPECT_DOUBLE_EQ(v.attention_position_s[1], kVectorWorkFallback.position_per_dim * 128 * flop_s);
  EXPECT_GT(v.attention_item_s(64, 100), 0);
  // Nothing measured at all: no term rather than a guess from nothing.
  EXPECT_EQ(vector_work(NodeSpeed{}).attention_item_s(64, 100), 0);
}
