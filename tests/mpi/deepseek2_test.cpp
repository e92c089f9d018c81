// deepseek2 across ranks with real mpirun (issue 15, acceptance 2): each rank attends with its
// query heads over the latent cache every rank holds, and holds its slice of the dense and
// shared-expert FFNs and of the routed experts (or whole experts where their columns cannot be
// cut); N ranks, uneven splits and shard files give one rank's logits bit for bit.
#include "tests/mpi/logit_runs.h"

namespace clusterctl::test {
namespace {

// The logits of `runs` (rank count, extra worker flags) and of shard files cut by `shard_split`
// are one rank's, float for float.
void expect_logits_identical(const std::string& model, const std::vector<std::pair<int, std::string>>& runs,
                             const std::string& shard_split) {
  TempDir tmp;
  const std::string ids = sequence_ids(32000);
  const auto base = dump_logits(1, model, ids, tmp / "n1.bin");
  ASSERT_FALSE(base.empty());
  for (const auto& [ranks, extra] : runs) {
    const auto got = dump_logits(ranks, model, ids, tmp / "nk.bin", extra);
    EXPECT_TRUE(got == base) << model << ": " << ranks << " ranks " << extra << " differ from one rank";
  }
  const int ranks = static_cast<int>(std::count(shard_split.begin(), shard_split.end(), ',')) + 1;
  auto r = run_command(kCli + " shard " + quote(model) + " --ranks " + std::to_string(ranks) + " --split " +
                       shard_split + " --out " + (tmp / "shards"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto got = dump_logits(ranks, tmp / "shards", ids, tmp / "shard.bin", "--split " + shard_split);
  EXPECT_TRUE(got == base) << model << ": shards " << shard_split << " differ from one rank";
}

// Q8_0: heads, experts' columns, the dense and shared FFNs cut on 32-column blocks.
TEST(DeepSeek2Ranks, V3ToyAnyRankCountSplitAndShards) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "models/llama-2-tiny-random.gguf");
  TempDir dir;
  expect_logits_identical(synth_model(dir, "tiny-deepseek3", "Q8_0"),
                          {{2, ""}, {3, ""}, {4, ""}, {2, "--split 2,1"}, {3, "--split 3,2,1"}}, "3,2,1");
}

TEST(DeepSeek2Ranks, V2LiteToyAnyRankCountSplitAndShards) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "models/llama-2-tiny-random.gguf");
  TempDir dir;
  expect_logits_identical(synth_model(dir, "tiny-deepseek2-lite", "Q8_0"),
                          {{2, ""}, {3, ""}, {4, ""}, {2, "--split 2,1"}, {3, "--split 3,2,1"}}, "3,2,1");
}

// Q4_K_M: the experts' 256 columns are one super-block, so each rank holds whole experts (and
// still its half of the dense and shared FFNs' 512 columns).
TEST(DeepSeek2Ranks, WholeExpertsPerRankOnBothToys) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "models/llama-2-tiny-random.gguf");
  TempDir dir;
  for (const char* shape : {"tiny-deepseek3", "tiny-deepseek2-lite"})
    expect_logits_identical(synth_model(dir, shape, "Q4_K_M"), {{2, ""}}, "2,1");
}

}  // namespace
}  // namespace clusterctl::test
