// The N-rank split rules: whole KV-head groups, replication past the KV heads, uneven weights
// rounded to the quantisation block of each cut tensor, refusals naming the nearest valid split.
#include <gtest/gtest.h>

#include <numeric>

#include "worker/common/error.h"
#include "worker/model/shard_plan.h"

namespace clusterctl::model {
namespace {

HParams llama3_1b() {
  HParams hp;
  hp.n_embd = 2048, hp.n_layer = 16, hp.n_head = 32, hp.n_head_kv = 8, hp.head_dim = 64, hp.n_ff = 8192,
  hp.n_vocab = 128256;
  return hp;
}

SplitUnits units(const HParams& hp, int64_t wo_block, int64_t down_block) {
  SplitUnits u;
  u.kv_group_heads = hp.n_head / hp.n_head_kv;
  u.head_align = wo_block / std::gcd<int64_t>(wo_block, hp.head_dim);
  u.ffn = down_block;
  return u;
}

std::string refusal(const HParams& hp, const SplitUnits& u, int n, const std::vector<double>& w = {}) {
  try {
    plan_shards(hp, u, n, w);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ShardPlan, EvenSplitKeepsKvGroupsWhole) {
  const auto hp = llama3_1b();
  for (int n = 1; n <= 8; ++n) {
    const auto plan = plan_shards(hp, units(hp, 32, 32), n);
    ASSERT_EQ(plan.parts.size(), size_t(n));
    for (const auto& p : plan.parts) {
      EXPECT_EQ(p.q_heads.begin % 4, 0) << n;  // 4 query heads per KV head
      EXPECT_EQ(p.q_heads.end % 4, 0) << n;
      EXPECT_EQ(p.ffn.begin % 32, 0) << n;
    }
  }
  const auto three = plan_shards(hp, units(hp, 32, 32), 3);
  EXPECT_EQ(three.parts[0].q_heads, (Range{0, 12}));  // 8 KV heads: 3 + 3 + 2 (rounded)
  EXPECT_EQ(three.parts[2].q_heads.end, 32);
}

TEST(ShardPlan, UnevenWeightsRoundToKQuantBlocks) {
  const auto hp = llama3_1b();
  const auto plan = plan_shards(hp, units(hp, 256, 256), 3, {2, 1, 1});
  EXPECT_EQ(plan.parts[0].q_heads, (Range{0, 16}));
  EXPECT_EQ(plan.parts[1].q_heads, (Range{16, 24}));
  EXPECT_EQ(plan.parts[0].ffn, (Range{0, 4096}));
  for (const auto& p : plan.parts) EXPECT_EQ(p.ffn.end % 256, 0);
}

TEST(ShardPlan, MoreRanksThanKvHeadsReplicatesKvHeads) {
  HParams hp = llama3_1b();
  hp.n_head_kv = 2;  // 16 query heads per KV head
  const auto plan = plan_shards(hp, units(hp, 32, 32), 4);
  for (const auto& p : plan.parts) EXPECT_EQ(p.q_heads.size(), 8);
  EXPECT_EQ(plan.parts[0].kv_heads(hp), (Range{0, 1}));
  EXPECT_EQ(plan.parts[1].kv_heads(hp), (Range{0, 1}));  // replicated
  EXPECT_EQ(plan.parts[3].kv_heads(hp), (Range{1, 2}));
}

// Qwen3-30B-A3B: 128 experts of 768 columns, three K-quant super-blocks. Up to three ranks cut
// every expert's columns; four or more hold whole experts, in proportion to their weights.
TEST(ShardPlan, ExpertsAreCutByColumnsOrPlacedWhole) {
  HParams hp;
  hp.n_embd = 2048, hp.n_layer = 48, hp.n_head = 32, hp.n_head_kv = 4, hp.head_dim = 128, hp.n_ff = 768,
  hp.n_vocab = 151936, hp.n_expert = 128, hp.n_expert_used = 8;
  const auto u = units(hp, 256, 256);
  const auto three = plan_shards(hp, u, 3);
  for (const auto& p : three.parts) EXPECT_EQ(p.experts, (Range{0, 128}));
  EXPECT_EQ(three.parts[1].ffn, (Range{256, 512}));
  const auto four = plan_shards(hp, u, 4);
  EXPECT_EQ(four.parts[1].experts, (Range{32, 64}));
  for (const auto& p : four.parts) EXPECT_EQ(p.ffn, (Range{0, 768}));
  const auto five = plan_shards(hp, u, 5, {2, 1, 1, 1, 3});  // 5 ranks: KV heads replicated
  EXPECT_EQ(five.parts[0].experts, (Range{0, 32}));
  EXPECT_EQ(five.parts[1].experts, (Range{32, 48}));
  EXPECT_EQ(five.parts[4].experts, (Range{80, 128}));
  EXPECT_EQ(plan_shards(hp, u, 8).parts[7].experts, (Range{112, 128}));
  EXPECT_EQ(max_ranks(hp, u), 16);  // the heads: 32 in units of 2 (Q4_K attn_output blocks span 2)
  // A plan that cuts both the experts and their columns is refused.
  ShardPlan bad = four;
  bad.parts[0].ffn = {0, 512};
  EXPECT_THROW(bad.validate(hp), Error);
}

TEST(ShardPlan, RefusesTooManyRanksNamingTheMost) {
  HParams hp = llama3_1b();
  hp.n_head = 4, hp.n_head_kv = 2, hp.n_embd = 256, hp.n_ff = 512;  // `tiny`
  const std::string why = refusal(hp, units(hp, 256, 256), 2);      // one Q4_K block spans all 4 heads
  EXPECT_NE(why.find("cannot be split over 2 ranks"), std::string::npos) << why;
  EXPECT_NE(why.find("the most ranks it allows is 1"), std::string::npos) << why;
  EXPECT_EQ(refusal(hp, units(hp, 32, 32), 4), "");  // Q4_0: 4 ranks, KV heads replicated
}

TEST(ShardPlan, RefusesAStarvedSplitNamingTheNearest) {
  const auto hp = llama3_1b();
  const std::string why = refusal(hp, units(hp, 32, 32), 2, {100, 1});
  EXPECT_NE(why.find("nearest split that can be made is --split 7,1"), std::string::npos) << why;
  EXPECT_NE(refusal(hp, units(hp, 32, 32), 2, {1, 1, 1}).find("3 weights for 2 ranks"), std::string::npos);
}

// Replicated attention: every rank every head (so heads no longer limit the ranks), the FFN and
// vocabulary cut as before; a plan that replicates on some ranks only is refused.
TEST(ShardPlan, ReplicatedAttentionGivesEveryRankEveryHead) {
  HParams hp = llama3_1b();
  const auto plan = plan_shards(hp, units(hp, 32, 32), 3, {2, 1, 1}, Layout::replicated_attention);
  const auto split = plan_shards(hp, units(hp, 32, 32), 3, {2, 1, 1});
  EXPECT_EQ(plan.layout(), Layout::replicated_attention);
  EXPECT_EQ(split.layout(), Layout::split_attention);
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(plan.parts[r].q_heads, (Range{0, 32}));
    EXPECT_EQ(plan.parts[r].kv_heads(hp), (Range{0, 8}));
    EXPECT_EQ(plan.parts[r].ffn, split.parts[r].ffn);
    EXPECT_EQ(plan.parts[r].vocab, split.parts[r].vocab);
  }
  // One rank: the whole model, the same plan either way.
  EXPECT_FALSE(plan_shards(hp, units(hp, 32, 32), 1, {}, Layout::replicated_attention).parts[0].replicated_attention);
  hp.n_head = 4, hp.n_head_kv = 2, hp.n_embd = 256, hp.n_ff = 512;  // `tiny` in Q4_K: one block spans 4 heads
  EXPECT_THROW(plan_shards(hp, units(hp, 256, 32), 2), Error);
  EXPECT_EQ(plan_shards(hp, units(hp, 256, 32), 2, {}, Layout::replicated_attention).parts.size(), 2u);
  ShardPlan mixed = plan;
  mixed.parts[1].replicated_attention = false;
  EXPECT_THROW(mixed.validate(llama3_1b()), Error);
  EXPECT_EQ(parse_layout("replicated-attention"), Layout::replicated_attention);
  EXPECT_EQ(parse_layout("split-attention"), Layout::split_attention);
  EXPECT_FALSE(parse_layout("auto"));
}

TEST(ShardPlan, ParseSplit) {
  EXPECT_EQ(parse_split("2,1,1"), (std::vector<double>{2, 1, 1}));
  EXPECT_EQ(format_split({2, 1.5}), "2,1.5");
  EXPECT_THROW(parse_split("2,,1"), Error);
  EXPECT_THROW(parse_split("2,-1"), Error);
  EXPECT_THROW(parse_split("a"), Error);
}

}  // namespace
}  // namespace clusterctl::model
