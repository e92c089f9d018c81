// Which machine a node is (launch::probe_machine), the one question `up` and `doctor` ask: on
// this machine through its real shell, and the answers of nodes that cannot say.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "controller/launch/machine_probe.h"

using namespace clusterctl;

namespace {

config::NodeConfig node(const std::string& name, int ranks) {
  config::NodeConfig n;
  n.name = name;
  n.ranks = ranks;
  return n;
}

TEST(ProbeMachine, ThisMachineAnswersItsCoresBootIdAndTheWorkersPath) {
  preflight::LocalShell shell;
  const auto m = launch::probe_machine(shell, "sh");
  EXPECT_EQ(m.cores, sysconf(_SC_NPROCESSORS_ONLN));
  std::string boot_id;
  std::getline(std::ifstream("/proc/sys/kernel/random/boot_id"), boot_id);
  ASSERT_EQ(boot_id.size(), 36u);
  EXPECT_EQ(m.machine_id, boot_id);
  EXPECT_TRUE(m.worker.starts_with("/") && m.worker.ends_with("/sh")) << m.worker;
  EXPECT_EQ(launch::probe_machine(shell, "no-such-clusterctl-worker").worker, "");
}

// A `worker:` under "~/" is the node's home's, and is found there as an absolute path.
TEST(ProbeMachine, AWorkerUnderHomeIsFoundInTheNodesHome) {
  const auto home = std::filesystem::temp_directory_path() / ("machine_probe_home_" + std::to_string(::getpid()));
  std::filesystem::create_directories(home / "my bin");
  const auto worker = home / "my bin" / "clusterctl-worker";
  std::ofstream(worker) << "#!/bin/sh\n";
  std::filesystem::permissions(worker, std::filesystem::perms::owner_all);
  const std::string saved = std::getenv("HOME") ? std::getenv("HOME") : "";
  setenv("HOME", home.c_str(), 1);
  preflight::LocalShell shell;
  const auto m = launch::probe_machine(shell, "~/my bin/clusterctl-worker");
  setenv("HOME", saved.c_str(), 1);
  std::filesystem::remove_all(home);
  EXPECT_EQ(m.worker, worker.string());
}

// A node's login PATH without sbin or Homebrew's folders still finds what preflight looks for.
TEST(ProbeMachine, TheNodePathAddsWhereToolsAndWorkersLive) {
  if (!std::filesystem::exists("/usr/sbin/sshd")) GTEST_SKIP() << "no /usr/sbin/sshd here";
  preflight::LocalShell shell;
  const auto r =
      shell.run("PATH=/usr/bin:/bin; " + std::string(preflight::kNodePath) + "command -v sshd; echo \"$PATH\"",
                std::chrono::seconds(5));
  EXPECT_EQ(r.out, "/usr/sbin/sshd\n/usr/bin:/bin:/usr/local/bin:/opt/homebrew/bin:/usr/sbin:/sbin\n");
}

// A node whose boot id reads empty (a masked /proc) has no known machine, and the worker's path
// after it is still the worker's, not taken for the machine.
TEST(ProbeMachine, AnUnreadableBootIdIsUnknownAndShiftsNothing) {
  const auto m = launch::parse_machine_probe("8\n\n/opt/bin/clusterctl-worker\n");
  EXPECT_EQ(m.cores, 8);
  EXPECT_EQ(m.machine_id, "");
  EXPECT_EQ(m.worker, "/opt/bin/clusterctl-worker");
  const auto none = launch::parse_machine_probe("");
  EXPECT_EQ(none.cores, 1);
  EXPECT_EQ(none.machine_id, "");
  EXPECT_EQ(launch::parse_machine_probe("x\n" + std::string(65, 'a') + "\n").machine_id, "");
  EXPECT_EQ(launch::parse_machine_probe("0\nab cd\n").cores, 1);
  EXPECT_EQ(launch::parse_machine_probe("0\nab cd\n").machine_id, "");
}

// Nodes of one boot id add up their ranks; a node of unknown machine is a machine of its own.
TEST(ProbeMachine, LoadsGroupNodesByBootIdAndKeepUnknownOnesApart) {
  const std::vector<config::NodeConfig> nodes = {node("a", 1), node("b", 2), node("c", 1), node("d", 3)};
  const std::vector<launch::MachineInfo> machines = {{4, "boot-1", ""}, {4, "boot-1", ""}, {2, "", ""}, {8, "", ""}};
  const auto load = launch::machine_loads(nodes, machines);
  ASSERT_EQ(load.size(), 3u);
  EXPECT_EQ(load.at("boot-1").ranks, 3);
  EXPECT_EQ(load.at("boot-1").nodes, 2);
  EXPECT_EQ(load.at("boot-1").cores, 4);
  EXPECT_EQ(launch::machine_key(machines[2], nodes[2]), "c");
  EXPECT_EQ(load.at("c").ranks, 1);
  EXPECT_EQ(load.at("c").cores, 2);
  EXPECT_EQ(load.at("d").ranks, 3);
  EXPECT_EQ(load.at("d").nodes, 1);
}

}  // namespace
