// Each rank's communication per token, as `bench --ranks` and the worker's --stats print it, is
// split into the collectives' own cost on the critical path (link) and waiting for slower ranks
// (issue #17; collectives::Communicator::settle_call_log, whose bounds
// tests/unit/collectives/call_split_check.cpp checks on injected delays): on 3 ranks over more calls
// than the call log holds, link + wait is each rank's communication, and the link is one figure,
// the same on every rank.
#include <nlohmann/json.hpp>

#include "tests/mpi/logit_runs.h"

namespace clusterctl::test {
namespace {

TEST(CommunicationSplit, LinkPlusWaitIsEachRanksCommunicationAndTheLinkIsOne) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "models/llama-2-tiny-random.gguf");
  TempDir dir;
  const std::string model = synth_model(dir, "tiny", "Q4_0");
  auto r = run_command(mpirun(
      3, "--model " + quote(model) + " --prompt-ids 1,2,3 -n 400 --temp 0 --ignore-eos --threads 1 --stats --json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto& ranks = j["per_rank"];
  ASSERT_EQ(ranks.size(), 3u);
  ASSERT_GT(ranks[0]["allreduces_per_token"].get<double>() * 400, 1.5 * 1024) << "fewer calls than the log holds";
  for (const auto& k : ranks) {
    const double comm = k["comm_s_per_token"], link = k["comm_link_s_per_token"], wait = k["comm_wait_s_per_token"];
    EXPECT_GT(comm, 0) << k;
    EXPECT_GE(link, 0) << k;
    EXPECT_GE(wait, 0) << k;
    EXPECT_NEAR(link + wait, comm, 1e-9 * comm) << k;
    EXPECT_EQ(link, ranks[0]["comm_link_s_per_token"].get<double>()) << k;
  }
  EXPECT_EQ(j["timings"]["comm_link_s_per_token"], ranks[0]["comm_link_s_per_token"]);
  EXPECT_NE(r.err.find("| link ms | wait ms |"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace clusterctl::test
