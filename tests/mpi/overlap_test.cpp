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
  // These ranks share one machine, where auto does not overlap: on, except over an emulated link.
  const std::pair<int, const char*> runs[] = {{2, "--overlap-prompt on"},
                                              {3, "--overlap-prompt on"},
                                              {2, "--overlap-prompt on --allreduce one-shot"},
                                              {3, "--overlap-prompt on --allreduce ring"},
                                              {3, "--overlap-prompt on --allreduce recursive-doubling --transport tcp"},
                                              {2, "--emulate-link latency=50us,bandwidth=1gbit"},
                                              {3, "--overlap-prompt on --layout replicated-attention"},
                                              {2, "--overlap-prompt off"}};
  for (const auto& [ranks, extra] : runs) {
    const auto got = dump_logits(ranks, model, ids, (dir.path / "n.bin").string(), extra);
    EXPECT_TRUE(got == one) << ranks << " ranks " << extra << ": the logits differ from one rank's";
  }
}

// on overlaps; off does not; auto does where the all-reduces cross a link: over an emulated one,
// not among ranks that all share this machine's memory.
TEST(PromptOverlap, ALongPromptsAllReducesOverlapOnAndOverALink) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  const std::string ids = prompt_ids(200);
  const auto one = generate(1, model, ids, "");
  ASSERT_FALSE(one.is_null());
  // Each layer's two all-reduces, in 4 pieces (200 tokens in pieces of 64).
  const std::pair<const char*, int> runs[] = {{"--overlap-prompt on", kLayers * 2 * 4},
                                              {"--emulate-link latency=50us,bandwidth=10gbit", kLayers * 2 * 4},
                                              {"--overlap-prompt off", 0},
                                              {"", 0}};
  for (const auto& [extra, overlapped] : runs) {
    const auto j = generate(2, model, ids, extra);
    ASSERT_FALSE(j.is_null()) << extra;
    EXPECT_EQ(j["timings"]["prompt_allreduces_overlapped"].get<int>(), overlapped) << extra << ": " << j.dump();
    EXPECT_EQ(j["generated_ids"], one["generated_ids"]) << extra;
  }
  // A prompt shorter than two pieces runs as one.
  const auto short_prompt = generate(2, model, prompt_ids(100), "--overlap-prompt on");
  ASSERT_FALSE(short_prompt.is_null());
  EXPECT_EQ(short_prompt["timings"]["prompt_allreduces_overlapped"].get<int>(), 0) << short_prompt.dump();
}

TEST(PromptOverlap, ABadValueIsRefused) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  auto r = run_command(mpirun(2, "--model " + quote(model) + " --prompt-ids 1,2 -n 2 --overlap-prompt maybe"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--overlap-prompt maybe: use auto, on or off"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace clusterctl::test
