// The pure parts of `up`: the mpirun command line and hostfile, the rank split from a cluster
// file, and `memory:` sizes.
#include <gtest/gtest.h>

#include <algorithm>

#include "controller/config/cluster_config.h"
#include "controller/launch/cluster_up.h"
#include "controller/launch/mpirun_command.h"
#include "controller/placement/split.h"

using namespace clusterctl;

namespace {

launch::JobSpec three_nodes() {
  launch::JobSpec job;
  for (int k = 1; k <= 3; ++k)
    job.nodes.push_back({"10.77.2." + std::to_string(k), k == 2 ? 2 : 1, 1, "/cache/node" + std::to_string(k) + "/cut",
                         "", k == 3 ? "ethernet" : "thunderbolt", ""});
  job.link_cidr = "10.77.2.0/24";
  job.yield_when_idle = true;
  job.run_as_root = true;
  job.worker = "/opt/bin/clusterctl-worker";
  job.hostfile = "/cache/node1/c.hostfile";
  job.listen_host = "0.0.0.0";
  job.listen_port = 8080;
  job.model_id = "stories260K";
  job.context = 512;
  return job;
}

std::string joined(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

TEST(MpirunCommand, PinsBothTransportsToTheLinkAndGivesEachNodeItsShardFolder) {
  const auto cmd = joined(launch::mpirun_argv(three_nodes()));
  EXPECT_NE(cmd.find("--mca btl_tcp_if_include 10.77.2.0/24 --mca oob_tcp_if_include 10.77.2.0/24"), std::string::npos)
      << cmd;
  EXPECT_NE(cmd.find("--mca mpi_yield_when_idle 1"), std::string::npos);
  EXPECT_NE(cmd.find("--allow-run-as-root"), std::string::npos);
  EXPECT_NE(cmd.find("--hostfile /cache/node1/c.hostfile"), std::string::npos);
  // Each node's link type, for the dashboard's picture.
  EXPECT_NE(cmd.find("--ctx 512 --link-type thunderbolt"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("--ctx 512 --link-type ethernet"), std::string::npos) << cmd;
  // A node's own tcp_interface goes to its ranks only.
  auto tcp_job = three_nodes();
  tcp_job.nodes[1].tcp_interface = "tb0,10.77.2.0/24";
  const auto with = joined(launch::mpirun_argv(tcp_job));
  EXPECT_NE(with.find("--link-type thunderbolt --tcp-interface tb0,10.77.2.0/24"), std::string::npos) << with;
  EXPECT_EQ(with.find("--tcp-interface"), with.rfind("--tcp-interface")) << with;
  // One app context per node, in rank order, each with its own --model folder.
  const auto a = cmd.find("-np 1 -H 10.77.2.1:1 /opt/bin/clusterctl-worker --model /cache/node1/cut --serve");
  const auto b = cmd.find(": -np 2 -H 10.77.2.2:2 /opt/bin/clusterctl-worker --model /cache/node2/cut --serve");
  const auto c = cmd.find(": -np 1 -H 10.77.2.3:1 /opt/bin/clusterctl-worker --model /cache/node3/cut --serve");
  ASSERT_NE(a, std::string::npos) << cmd;
  ASSERT_NE(b, std::string::npos) << cmd;
  ASSERT_NE(c, std::string::npos) << cmd;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_NE(cmd.find("--host 0.0.0.0 --port 8080 --model-id stories260K --threads 1 --ctx 512"), std::string::npos);
  EXPECT_EQ(cmd.find("--token-file"), std::string::npos);
  EXPECT_EQ(cmd.find("--parallel"), std::string::npos);  // the worker's default unless the cluster file says
  auto busy = three_nodes();
  busy.parallel = 16;
  EXPECT_NE(joined(launch::mpirun_argv(busy)).find("--ctx 512 --parallel 16"), std::string::npos);
  EXPECT_EQ(cmd.find("--draft"), std::string::npos);
  auto drafting = three_nodes();
  drafting.draft = "/models/draft.gguf";
  drafting.draft_max = 12;
  EXPECT_NE(joined(launch::mpirun_argv(drafting)).find("--draft /models/draft.gguf --draft-max 12"), std::string::npos);
  // A node's own worker path (resolved on that node) replaces the default in its app context only.
  auto job = three_nodes();
  job.nodes[1].worker = "/home/me/bin/clusterctl-worker";
  const auto own = joined(launch::mpirun_argv(job));
  EXPECT_NE(own.find("-H 10.77.2.2:2 /home/me/bin/clusterctl-worker --model /cache/node2/cut"), std::string::npos)
      << own;
  EXPECT_NE(own.find("-H 10.77.2.3:1 /opt/bin/clusterctl-worker --model /cache/node3/cut"), std::string::npos) << own;
  EXPECT_EQ(launch::hostfile_text(three_nodes()), "10.77.2.1 slots=1\n10.77.2.2 slots=2\n10.77.2.3 slots=1\n");
}

// The cluster file's liveness and api keys reach every rank's command line; the heartbeat only
// where ranks talk over a link.
TEST(MpirunCommand, LivenessAndApiKeysBecomeWorkerFlags) {
  auto c = config::parse_cluster_config(
      "cluster: lab\nmodel: m.gguf\nliveness: {node_timeout: 4.5}\n"
      "api: {cors_origins: [https://a.example], allowed_hosts: [chat.local], health_open: true}\n"
      "nodes:\n  - {name: a, host: 10.0.0.1}\n",
      "t.yaml");
  EXPECT_EQ(joined(launch::serve_args(c, "10.77.2.0/24")),
            "--step-timeout 300 --heartbeat-link 10.77.2.0/24 --heartbeat-interval 1 --node-timeout 4.5 "
            "--cors-origin https://a.example --allowed-host chat.local --health-open");
  EXPECT_EQ(joined(launch::serve_args(c, "")),
            "--step-timeout 300 --cors-origin https://a.example --allowed-host chat.local --health-open");
  auto job = three_nodes();
  job.serve_args = launch::serve_args(c, job.link_cidr);
  const std::string cmd = joined(launch::mpirun_argv(job));
  size_t n = 0;
  for (size_t at = cmd.find("--heartbeat-link 10.77.2.0/24"); at != std::string::npos;
       at = cmd.find("--heartbeat-link 10.77.2.0/24", at + 1))
    ++n;
  EXPECT_EQ(n, 3u) << cmd;  // every node's app context
}

// Each rank learns how many ranks share its machine's cores (its wait rule, wait_policy.h): the
// launcher's count of the machine's nodes together, which mpirun cannot see in namespaces.
TEST(MpirunCommand, EachNodesRanksLearnHowManyRanksShareTheirMachine) {
  auto job = three_nodes();
  for (auto& n : job.nodes) n.ranks_on_machine = 4;
  job.nodes[2].ranks_on_machine = 1;
  const auto cmd = joined(launch::mpirun_argv(job));
  const auto a = cmd.find("--ranks-on-machine 4"), b = cmd.find("--ranks-on-machine 4", a + 1);
  const auto c = cmd.find("--ranks-on-machine 1");
  ASSERT_NE(b, std::string::npos) << cmd;
  EXPECT_LT(a, cmd.find(": -np 2")) << cmd;
  EXPECT_LT(b, cmd.find(": -np 1 -H 10.77.2.3")) << cmd;
  EXPECT_GT(c, cmd.find(": -np 1 -H 10.77.2.3")) << cmd;
  job.worker_args = std::vector<std::string>{"--bench-net"};
  const auto bench = joined(launch::mpirun_argv(job));
  EXPECT_NE(bench.find("--bench-net --ranks-on-machine 4"), std::string::npos) << bench;
  EXPECT_NE(bench.find("--bench-net --ranks-on-machine 1"), std::string::npos) << bench;
  job.nodes[0].ranks_on_machine = 0;  // not told: the worker asks mpirun
  const auto untold = joined(launch::mpirun_argv(job));
  EXPECT_EQ(untold.find("--ranks-on-machine"), untold.find("--ranks-on-machine 4")) << untold;
  EXPECT_NE(joined(launch::mpirun_argv(launch::local_job(3, 2, true, "w", {}))).find("-np 3 w --ranks-on-machine 3"),
            std::string::npos);
}

TEST(MpirunCommand, OneMachineJobHasNoLinkPinningNorHostfile) {
  launch::JobSpec job = three_nodes();
  job.nodes.resize(1);
  job.link_cidr = "";
  job.run_as_root = false;
  job.yield_when_idle = false;
  const auto cmd = joined(launch::mpirun_argv(job));
  EXPECT_EQ(cmd.find("if_include"), std::string::npos);
  EXPECT_EQ(cmd.find("--hostfile"), std::string::npos);
  EXPECT_EQ(cmd.find("-H "), std::string::npos);
  EXPECT_EQ(cmd.find("yield"), std::string::npos);
  EXPECT_EQ(cmd.find("root"), std::string::npos);
  EXPECT_EQ(launch::hostfile_text(job), "");
}

TEST(MpirunCommand, LocalRanksAreAOneNodeJobWithTheArgumentsAsGiven) {
  const auto crowded = joined(launch::mpirun_argv(
      launch::local_job(3, 2, true, "/b/clusterctl-worker", {"--model", "m.gguf", "--prompt", "hi"})));
  EXPECT_NE(crowded.find("--allow-run-as-root"), std::string::npos) << crowded;
  EXPECT_NE(crowded.find("--oversubscribe"), std::string::npos) << crowded;
  EXPECT_NE(crowded.find("--mca mpi_yield_when_idle 1"), std::string::npos) << crowded;
  EXPECT_NE(crowded.find("-np 3 /b/clusterctl-worker --model m.gguf --prompt hi"), std::string::npos) << crowded;
  EXPECT_EQ(crowded.find("--tag-output"), std::string::npos) << "a local run streams the worker's own text";
  EXPECT_EQ(crowded.find("--serve"), std::string::npos);
  EXPECT_EQ(crowded.find("-H "), std::string::npos);
  // Ranks that fill the cores yield; only more ranks than cores oversubscribe.
  const auto full = joined(launch::mpirun_argv(launch::local_job(2, 2, false, "w", {})));
  EXPECT_NE(full.find("yield"), std::string::npos) << full;
  EXPECT_EQ(full.find("--oversubscribe"), std::string::npos) << full;
  EXPECT_EQ(full.find("root"), std::string::npos) << full;
  const auto roomy = joined(launch::mpirun_argv(launch::local_job(2, 8, false, "w", {})));
  EXPECT_EQ(roomy.find("yield"), std::string::npos) << roomy;
  EXPECT_TRUE(roomy.ends_with("-np 2 w --ranks-on-machine 2")) << roomy;
}

// A benchmark over the link (bench net CLUSTER.yaml, doctor's probe): every rank the same
// arguments, plus its own node's tcp_interface (interface names differ between nodes).
TEST(MpirunCommand, BenchOverTheLinkGivesEachNodeItsTcpInterface) {
  launch::JobSpec job;
  job.link_cidr = "10.77.2.0/24";
  job.hostfile = "/tmp/h";
  job.worker = "w";
  job.worker_args = std::vector<std::string>{"--bench-net", "--json"};
  job.nodes.resize(2);
  job.nodes[0].address = "10.77.2.1";
  job.nodes[0].tcp_interface = "tb0";
  job.nodes[1].address = "10.77.2.2";
  const auto cmd = joined(launch::mpirun_argv(job));
  EXPECT_NE(cmd.find("-np 1 -H 10.77.2.1:1 w --bench-net --json --tcp-interface tb0 : -np 1 -H 10.77.2.2:1 w "
                     "--bench-net --json"),
            std::string::npos)
      << cmd;
  EXPECT_TRUE(cmd.ends_with("10.77.2.2:1 w --bench-net --json")) << cmd;
}

TEST(MpirunCommand, ShellCommandQuotesWhatNeedsIt) {
  EXPECT_EQ(launch::shell_command({"a", "b c", "it's", "x/y:1,2"}), "a 'b c' 'it'\\''s' x/y:1,2");
  EXPECT_EQ(launch::network_cidr(0x0a4d0207, 24), "10.77.2.0/24");
  EXPECT_EQ(launch::network_cidr(0x0a4d0207, 32), "10.77.2.7/32");
}

const char* kCluster = R"(cluster: c
model: /m/model.gguf
defaults: {link: {type: ethernet, cidr: 10.0.0.0/24}}
nodes:
  - {name: a, host: a, weight: 2, ranks: 2}
  - {name: b, host: b, weight: 1}
  - {name: c, host: c, weight: 1, memory: 1.5GiB}
)";

TEST(RankSplit, NodeWeightsAreSharedByTheNodesRanks) {
  auto config = config::parse_cluster_config(kCluster, "c.yaml");
  auto split = placement::rank_split(config, {});
  EXPECT_EQ(split.total_ranks, 4);
  EXPECT_EQ(split.first_rank, (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(split.text, "1,1,1,1");  // 2/2, 2/2 (a's two ranks), 1, 1
  EXPECT_TRUE(split.weights.empty()) << "an even split is the default cut";
  EXPECT_EQ(config.nodes[2].memory_limit, uint64_t(1.5 * 1073741824.0));
}

TEST(RankSplit, UnevenWeights) {
  std::string text = kCluster;
  text.replace(text.find("weight: 2, ranks: 2"), 19, "weight: 3, ranks: 1");
  auto split = placement::rank_split(config::parse_cluster_config(text, "c.yaml"), {});
  EXPECT_EQ(split.text, "3,1,1");
  EXPECT_EQ(split.weights, (std::vector<double>{3, 1, 1}));
}

TEST(ByteSize, Units) {
  EXPECT_EQ(config::parse_byte_size("1GiB"), 1073741824u);
  EXPECT_EQ(config::parse_byte_size("512MiB"), 536870912u);
  EXPECT_EQ(config::parse_byte_size("2G"), 2000000000u);
  EXPECT_EQ(config::parse_byte_size("64 KiB"), 65536u);
  EXPECT_EQ(config::parse_byte_size("4096"), 4096u);
  EXPECT_FALSE(config::parse_byte_size("lots"));
  EXPECT_FALSE(config::parse_byte_size("1 GiBs"));
}

TEST(ByteSize, BadMemoryIsAConfigError) {
  std::string text = kCluster;
  text.replace(text.find("1.5GiB"), 6, "plenty");
  try {
    config::parse_cluster_config(text, "c.yaml");
    FAIL() << "expected a ConfigError";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("c.yaml:7:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad memory size 'plenty'"), std::string::npos) << e.what();
  }
}

}  // namespace
