// Tensor-parallel math without MPI: the model split into N Partitions, one thread per rank
// talking through an in-process communicator that really sums, must give the logits and
// greedy tokens of the unsplit model.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

#include "tests/unit/model/model_test_util.h"
#include "tests/unit/shared_data.h"
#include "worker/common/error.h"
#include "worker/model/engine.h"

namespace clusterctl::model {
namespace {

HParams stories_like() {
  HParams hp;
  hp.n_head = 8;
  hp.n_head_kv = 4;
  hp.n_ff = 172;
  hp.n_vocab = 512;
  hp.head_dim = 8;
  return hp;
}

TEST(ShardPlan, SingleRankHoldsEverything) {
  auto hp = stories_like();
  auto plan = ShardPlan::split(hp, 1);
  ASSERT_EQ(plan.parts.size(), 1u);
  EXPECT_EQ(plan.parts[0].q_heads, (Range{0, 8}));
  EXPECT_EQ(plan.parts[0].ffn, (Range{0, 172}));
  EXPECT_EQ(plan.parts[0].vocab, (Range{0, 512}));
  EXPECT_EQ(plan.parts[0].kv_heads(hp), (Range{0, 4}));
}

TEST(ShardPlan, ThreeRanksSplitWholeKvGroups) {
  auto hp = stories_like();
  auto plan = ShardPlan::split(hp, 3);
  ASSERT_EQ(plan.parts.size(), 3u);
  for (const auto& p : plan.parts) {
    EXPECT_EQ(p.q_heads.begin % 2, 0) << p.describe();  // groups of 2 query heads per KV head
    EXPECT_EQ(p.q_heads.end % 2, 0) << p.describe();
  }
  EXPECT_NO_THROW(plan.validate(hp));
}

TEST(ShardPlan, UnevenWeightsAndAlignment) {
  auto hp = stories_like();
  hp.n_ff = 8192;
  auto plan = ShardPlan::split(hp, 2, {3, 1}, 256, 32);
  EXPECT_EQ(plan.parts[0].q_heads, (Range{0, 6}));
  EXPECT_EQ(plan.parts[0].ffn.end % 256, 0);
  EXPECT_EQ(plan.parts[0].ffn, (Range{0, 6144}));
  EXPECT_EQ(plan.parts[0].vocab.end % 32, 0);
}

TEST(ShardPlan, MoreRanksThanKvHeadsReplicatesKvHeads) {
  auto hp = stories_like();
  auto plan = ShardPlan::split(hp, 8);
  EXPECT_EQ(plan.parts[0].kv_heads(hp), (Range{0, 1}));
  EXPECT_EQ(plan.parts[1].kv_heads(hp), (Range{0, 1}));  // shares KV head 0 with rank 0
  EXPECT_EQ(plan.parts[7].kv_heads(hp), (Range{3, 4}));
}

TEST(ShardPlan, ImpossibleSplitIsRefused) {
  auto hp = stories_like();
  EXPECT_THROW(ShardPlan::split(hp, 9), Error);           // 9 ranks, 8 query heads
  EXPECT_THROW(ShardPlan::split(hp, 2, {1, 0}), Error);   // a zero weight
  EXPECT_THROW(ShardPlan::split(hp, 2, {}, 128), Error);  // FFN 172 cannot hold two 128-blocks
}

struct RankResult {
  std::vector<std::vector<float>> logits;  // full vocabulary (rank 0 only), one per step
  std::vector<int32_t> greedy;
};

// Runs prompt processing as one batch, then `steps` greedy decode steps, on `plan` with one
// thread per rank. Returns each rank's view.
std::vector<RankResult> run_split(const gguf::GgufFile& f, const ShardPlan& plan, const std::vector<int32_t>& prompt,
                                  int steps) {
  const int n = static_cast<int>(plan.parts.size());
  test::ThreadGroup group(n);
  std::vector<RankResult> results(n);
  std::vector<std::string> errors(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      try {
        test::ThreadCommunicator comm(group, r);
        // F32 cache: an F16 cache would round differently summed keys to different halves.
        Engine e(f, plan, comm, {.kv_type = gguf::GgmlType::F32, .threads = 1});
        LocalLogits l = e.prefill(prompt, 0, 0);
        int64_t pos = static_cast<int64_t>(prompt.size());
        Batch b;
        for (int s = 0; s < steps; ++s) {
          const float* full = e.gather(l, l.rows - 1);
          if (full) results[r].logits.emplace_back(full, full + e.hparams().n_vocab);
          int32_t tok = e.argmax(l, l.rows - 1);
          results[r].greedy.push_back(tok);
          b.clear();
          b.add(tok, static_cast<int32_t>(pos++), 0, true);
          l = e.forward(b);
        }
      } catch (const std::exception& ex) {
        errors[r] = ex.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < n; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
  return results;
}

void expect_split_equals_whole(int n_ranks, std::vector<double> weights = {}) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  gguf::GgufFile f(path);
  const auto hp = Model::read_hparams(f);
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 429, 322, 300};
  const int steps = 24;
  auto whole = run_split(f, ShardPlan::single(hp), prompt, steps);
  auto plan = ShardPlan::split(hp, n_ranks, weights);
  auto split = run_split(f, plan, prompt, steps);
  ASSERT_EQ(whole[0].logits.size(), static_cast<size_t>(steps));
  ASSERT_EQ(split[0].logits.size(), static_cast<size_t>(steps));
  for (int r = 0; r < n_ranks; ++r) EXPECT_EQ(split[r].greedy, whole[0].greedy) << "rank " << r;
  for (int s = 0; s < steps; ++s) {
    float worst = 0;
    for (size_t i = 0; i < whole[0].logits[s].size(); ++i)
      worst = std::max(
          worst, std::abs(split[0].logits[s][i] - whole[0].logits[s][i]) / (1.0f + std::abs(whole[0].logits[s][i])));
    EXPECT_LT(worst, 1e-4f) << "step " << s;  // only the order of float sums differs
  }
}

TEST(TensorParallel, TwoRanksEqualOne) { expect_split_equals_whole(2); }
TEST(TensorParallel, ThreeRanksEqualOne) { expect_split_equals_whole(3); }
TEST(TensorParallel, UnevenTwoRanksEqualOne) { expect_split_equals_whole(2, {3, 1}); }
TEST(TensorParallel, EightRanksReplicatingKvHeadsEqualOne) { expect_split_equals_whole(8); }

}  // namespace
}  // namespace clusterctl::model
