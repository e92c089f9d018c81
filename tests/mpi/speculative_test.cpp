// Speculative decoding (issue #18) with real mpirun and clusterctl-worker processes: greedy
// output with a draft model (stories260K's own Q4_K_M copy) or with prompt lookup is plain
// greedy decoding's, token for token, on 1, 2 and 3 ranks, in the worker and in `clusterctl run`
// (here and with --ranks); a draft of another vocabulary is refused with the cause.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/mpi/process.h"
#include "tests/mpi/worker_job.h"
#include "tests/unit/shared_data.h"

namespace clusterctl::test {
namespace {

constexpr int kTokens = 48;

class SpeculativeGreedy : public ::testing::Test {
 protected:
  void SetUp() override {
    CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
    model_ = model;
    // llama.cpp's greedy tokens, which are plain greedy decoding's (tensor_parallel_test).
    prompts_ = stories_reference_prompts(kTokens);
    ASSERT_EQ(prompts_.size(), 5u);
    draft_ = dir_ / "stories260K-Q4_K_M.gguf";
    auto r = run_command(kCli + " model quantize " + quote(model_) + " " + quote(draft_) + " --type Q4_K_M");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // Runs `command` (printing JSON) on every prompt; expects plain greedy's tokens. Returns the
  // drafted and accepted tokens summed over the prompts.
  std::pair<int64_t, int64_t> expect_plain_greedy(const std::string& command, const std::string& what) {
    int64_t drafted = 0, accepted = 0;
    for (const auto& p : prompts_) {
      auto r = run_command(command + " --prompt " + quote(p.text) + " -n " + std::to_string(kTokens) +
                           " --temp 0 --threads 1 --json");
      EXPECT_EQ(r.exit_code, 0) << what << ": " << r.err;
      if (r.exit_code != 0) continue;
      const auto j = nlohmann::json::parse(r.out);
      EXPECT_EQ(j["generated_ids"].get<std::vector<int32_t>>(), p.llama_cpp_ids) << what << " on '" << p.text << "'";
      EXPECT_TRUE(j.contains("speculative")) << what << ": no speculative section";
      if (!j.contains("speculative")) continue;
      drafted += j["speculative"]["drafted"].get<int64_t>();
      accepted += j["speculative"]["accepted"].get<int64_t>();
    }
    return {drafted, accepted};
  }

  std::string model_, draft_;
  TempDir dir_;
  std::vector<ReferencePrompt> prompts_;
};

// --draft-min keeps the drafts coming (k would adapt to 0 here, where the draft model costs as
// much as the target): every round verifies several tokens and rolls back the rejected ones.
TEST_F(SpeculativeGreedy, DraftModelOnOneTwoThreeRanksEqualsPlainGreedy) {
  for (int ranks : {1, 2, 3}) {
    const auto [drafted, accepted] = expect_plain_greedy(
        mpirun(ranks, "--model " + quote(model_) + " --draft " + quote(draft_) + " --draft-min 3 --draft-max 5"),
        std::to_string(ranks) + " ranks, draft model");
    EXPECT_GT(drafted, 5 * 30);
    EXPECT_GT(accepted, 0);
    EXPECT_LT(accepted, drafted) << "no draft was ever rejected: the rollback went untested";
  }
}

TEST_F(SpeculativeGreedy, PromptLookupOnOneTwoThreeRanksEqualsPlainGreedy) {
  for (int ranks : {1, 2, 3}) {
    const auto [drafted, accepted] =
        expect_plain_greedy(mpirun(ranks, "--model " + quote(model_) + " --draft ngram --draft-min 2"),
                            std::to_string(ranks) + " ranks, ngram");
    EXPECT_GT(drafted, 0);
    EXPECT_GT(accepted, 0);
  }
}

TEST_F(SpeculativeGreedy, RunLocallyAndWithRanksEqualsPlainGreedy) {
  expect_plain_greedy(kCli + " run " + quote(model_) + " --draft " + quote(draft_) + " --draft-min 2", "run, draft");
  expect_plain_greedy(kCli + " run " + quote(model_) + " --draft ngram", "run, ngram");
  expect_plain_greedy(kCli + " run " + quote(model_) + " --ranks 2 --draft " + quote(draft_) + " --draft-min 2",
                      "run --ranks 2, draft");
}

TEST(SpeculativeRefusal, DraftOfAnotherVocabularyOrMissingNamesTheCause) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  CLUSTERCTL_REQUIRE_SHARED(other, "models/llama-2-tiny-random.gguf");
  auto r = run_command(mpirun(2, "--model " + quote(model) + " --prompt hi -n 4 --draft " + quote(other)));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("another vocabulary than the model"), std::string::npos) << r.err;
  r = run_command(kCli + " run " + quote(model) + " hi -n 4 --draft /nonexistent/draft.gguf");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no such file"), std::string::npos) << r.err;
  r = run_command(kCli + " run " + quote(model) + " hi -n 4 --draft ngram --draft-min 5 --draft-max 2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("do not make a range"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace clusterctl::test
