// Replicated attention (issue #17): every rank computes every head with the whole attention weights
// and KV cache and only the FFN or the experts are split, so a layer all-reduces once instead of
// twice. The attention output is then what one rank computes, and the FFN's partial sums are
// reduced as before: N ranks, uneven splits and shard files give one rank's logits float for float,
// on a dense toy, a mixture of experts, Qwen3-MoE's scheme and deepseek2's latent attention.
#include <nlohmann/json.hpp>

#include "tests/mpi/logit_runs.h"

namespace clusterctl::test {
namespace {

const std::string kReplicated = " --layout replicated-attention";

// The logits of `runs` (rank count, --split weights or "") with replicated attention, and of the
// shard files cut so by `shard_split`, are one rank's bit for bit.
void expect_replicated_identical(const std::string& model, const std::vector<std::pair<int, std::string>>& runs,
                                 const std::string& shard_split) {
  TempDir tmp;
  const std::string ids = sequence_ids(32000);
  const auto base = dump_logits(1, model, ids, tmp / "n1.bin");
  ASSERT_FALSE(base.empty());
  for (const auto& [ranks, split] : runs) {
    const std::string extra = (split.empty() ? "" : "--split " + split) + kReplicated;
    const auto got = dump_logits(ranks, model, ids, tmp / "nk.bin", extra);
    EXPECT_TRUE(got == base) << model << ": " << ranks << " ranks " << extra << " differ from one rank";
  }
  const int ranks = static_cast<int>(std::count(shard_split.begin(), shard_split.end(), ',')) + 1;
  auto r = run_command(kCli + " shard " + quote(model) + " --ranks " + std::to_string(ranks) + " --split " +
                       shard_split + kReplicated + " --out " + (tmp / "shards"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(replicated)"), std::string::npos) << r.out;
  // The shards carry their layout: no --layout needed to run them.
  const auto got = dump_logits(ranks, tmp / "shards", ids, tmp / "shard.bin", "--split " + shard_split);
  EXPECT_TRUE(got == base) << model << ": replicated-attention shards " << shard_split << " differ from one rank";
  // Asked for the other layout, they are refused naming the fix.
  r = run_command(mpirun(ranks, "--model " + quote(tmp / "shards") + " --prompt-ids 1,2 --split " + shard_split +
                                    " --layout split-attention --dump-logits " + (tmp / "x.bin")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--layout replicated-attention"), std::string::npos) << r.err;
}

TEST(ReplicatedAttention, DenseToyAnyRankCountSplitAndShards) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "models/llama-2-tiny-random.gguf");
  TempDir dir;
  expect_replicated_identical(synth_model(dir, "tiny", "Q4_0"), {{2, ""}, {3, ""}, {3, "3,2,1"}}, "2,1");
}

TEST(ReplicatedAttention, MixtureOfExpertsToysAnyRankCountSplitAndShards) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "models/llama-2-tiny-random.gguf");
  TempDir dir;
  expect_replicated_identical(synth_model(dir, "tiny-moe", "Q8_0"), {{2, ""}, {3, "3,2,1"}}, "2,1");
  expect_replicated_identical(synth_model(dir, "tiny-qwen3moe", "Q8_0"), {{3, ""}}, "1,2");
}

// deepseek2: every rank already holds the latent cache; replicated, it also expands every head.
TEST(ReplicatedAttention, LatentAttentionToy) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "models/llama-2-tiny-random.gguf");
  TempDir dir;
  expect_replicated_identical(synth_model(dir, "tiny-deepseek3", "Q8_0"), {{2, ""}, {3, "3,2,1"}}, "2,1");
}

// Half the all-reduces: the worker's --stats count them per generated token.
TEST(ReplicatedAttention, OneAllreducePerLayer) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "models/llama-2-tiny-random.gguf");
  TempDir dir;
  const std::string model = synth_model(dir, "tiny", "Q4_0");
  auto allreduces = [&](const std::string& extra) {
    auto r = run_command(mpirun(2, "--model " + quote(model) +
                                       " --prompt-ids 1,2,3 -n 4 --temp 0 --ignore-eos --threads 1 --stats --json " +
                                       extra));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (r.exit_code != 0) return -1.0;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["layout"], extra.empty() ? "split-attention" : "replicated-attention");
    return j["per_rank"][0]["allreduces_per_token"].get<double>();
  };
  const double split = allreduces(""), replicated = allreduces(kReplicated);
  EXPECT_GT(split, 0);
  EXPECT_EQ(replicated * 2, split) << "split " << split << ", replicated " << replicated;
}

}  // namespace
}  // namespace clusterctl::test
