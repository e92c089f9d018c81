// Issue #17: a prompt's all-reduces overlapped with its matmuls (ForwardPass::add_row_parallel:
// pieces of tokens, each piece's sums travelling while the next piece computes) change no bit: N
// ranks give one rank's logits over a prompt long enough to be cut, with each algorithm, over the
// tcp transport, an emulated link and the replicated-attention layout; and the pieces did overlap.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/mpi/logit_runs.h"
#include "tests/mpi/process.h"
#include "tests/mpi/worker_job.h"
#include "tests/unit/shared_data.h"

namespace clusterctl::test {
namespace {

// stories260K: 5 layers, a vocabulary of 512.
constexpr int kLayers = 5;

// n token ids spread over the vocabulary, after BOS.
std::string prompt_ids(int n) {
  std::string s = "1";
  for (int i = 1; i < n; ++i) s += "," + std::to_string(2 + (i * 37) % 500);
  return s;
}

// The worker's JSON for a greedy run of `ids`.
nlohmann::json generate(int ranks, const std::string& model, const std::string& ids, const std::string& extra) {
  auto r = run_command(
      mpirun(ranks, "--model " + quote(model) + " --prompt-ids " + ids + " -n 8 --temp 0 --threads 1 --json " + extra));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json{};
}

TEST(PromptOverlap, PiecesGiveOneRanksLogitsBitForBit) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  TempDir dir;
  const std::string ids = prompt_ids(200);  // 4 pieces of at most 64 tokens
  const auto one = dump_logits(1, model, ids, (dir.path / "one.bin").string());
  ASSERT_EQ(one.size(), 200u * 512u);
  const std::pair<int, const char*> runs[] = {{2, ""},
                                              {3, ""},
                                              {2, "--allreduce one-shot"},
                                              {3, "--allreduce ring"},
                                              {3, "--allreduce recursive-doubling --transport tcp"},
                                              {2, "--emulate-link latency=50us,bandwidth=1gbit"},
                                              {3, "--layout replicated-attention"},
                                              {2, "--overlap-prompt off"}};
  for (const auto& [ranks, extra] : runs) {
    const auto got = dump_logits(ranks, model, ids, (dir.path / "n.bin").string(), extra);
    EXPECT_TRUE(got == one) << ranks << " ranks " << extra << ": the logits differ from one rank's";
  }
}

TEST(PromptOverlap, ALongPromptsAllReducesOverlapUnlessTurnedOff) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  const std::string ids = prompt_ids(200);
  const auto on = generate(2, model, ids, "");
  const auto off = generate(2, model, ids, "--overlap-prompt off");
  const auto one = generate(1, model, ids, "");
  ASSERT_FALSE(on.is_null() || off.is_null() || one.is_null());
  // Each layer's two all-reduces, in 4 pieces (200 tokens in pieces of 64).
  EXPECT_EQ(on["timings"]["prompt_allreduces_overlapped"].get<int>(), kLayers * 2 * 4) << on.dump();
  EXPECT_EQ(off["timings"]["prompt_allreduces_overlapped"].get<int>(), 0) << off.dump();
  EXPECT_EQ(on["generated_ids"], one["generated_ids"]);
  EXPECT_EQ(off["generated_ids"], one["generated_ids"]);
  // A prompt shorter than two pieces runs as one.
  const auto short_prompt = generate(2, model, prompt_ids(100), "");
  ASSERT_FALSE(short_prompt.is_null());
  EXPECT_EQ(short_prompt["timings"]["prompt_allreduces_overlapped"].get<int>(), 0) << short_prompt.dump();
}

TEST(PromptOverlap, ABadValueIsRefused) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  auto r = run_command(mpirun(2, "--model " + quote(model) + " --prompt-ids 1,2 -n 2 --overlap-prompt maybe"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--overlap-prompt maybe: use on or off"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace clusterctl::test
