// The cluster state file: round trip, atomic replace, listing, removal, and the folder rules.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "controller/state/cluster_state.h"
#include "worker/common/error.h"

namespace fs = std::filesystem;
using namespace clusterctl;

namespace {

class StateDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("clusterctl-state-test-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    setenv("CLUSTERCTL_STATE_DIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    unsetenv("CLUSTERCTL_STATE_DIR");
    fs::remove_all(dir_);
  }
  fs::path dir_;
};

state::ClusterState sample(const std::string& name) {
  state::ClusterState s;
  s.cluster = name;
  s.config_path = "/etc/clusterctl/" + name + ".yaml";
  s.model_id = "stories260K";
  s.model_path = "/models/stories260K.gguf";
  s.endpoint = "http://10.77.2.1:8080";
  s.head_node = "node1";
  s.head_host = "10.77.1.1";
  s.mpirun_pid = 4242;
  s.log_path = "/cache/node1/clusterctl-up.log";
  s.split = "1,1,1";
  s.started_at = 1795000000;
  s.supervisor_pid = 777;
  s.restarts = 2;
  s.last_restart = "node3 lost; running on 2 node(s), 2 rank(s); 7.1 s to recover";
  s.restarting = "since 2026-12-05 01:00:00: HTTP 503 node node3 (rank 2, 10.77.2.3) is lost";
  for (int k = 1; k <= 3; ++k)
    s.nodes.push_back({"node" + std::to_string(k),
                       "10.77.1." + std::to_string(k),
                       1,
                       1,
                       "tb0",
                       "10.77.2." + std::to_string(k),
                       {"/cache/node" + std::to_string(k) + "/m.rank0of3.gguf"}});
  return s;
}

TEST_F(StateDir, SaveLoadRoundTripKeepsEveryField) {
  auto s = sample("test");
  state::save(s);
  EXPECT_TRUE(fs::exists(dir_ / "test.json"));
  auto back = state::load("test");
  ASSERT_TRUE(back);
  EXPECT_EQ(state::to_json(*back), state::to_json(s));
  EXPECT_EQ(back->total_ranks(), 3);
  EXPECT_EQ(back->nodes[2].link_address, "10.77.2.3");
  EXPECT_EQ(back->restarting, s.restarting);  // what `status` shows while the supervisor restarts the job
  EXPECT_EQ(back->supervisor_pid, 777);
}

TEST_F(StateDir, SaveReplacesAndLeavesNoTempFile) {
  auto s = sample("test");
  state::save(s);
  s.mpirun_pid = 7;
  state::save(s);
  EXPECT_EQ(state::load("test")->mpirun_pid, 7);
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1);
}

// The state names the pids `down` signals: private to the user whatever the umask (000 made the
// folder 0777 and the file 0666).
TEST_F(StateDir, FolderAndFileArePrivateWhateverTheUmask) {
  const mode_t old = ::umask(0);
  state::save(sample("lab"));
  ::umask(old);
  EXPECT_EQ(fs::status(dir_).permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_EQ(fs::status(state::state_path("lab")).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(StateDir, MissingIsNulloptAndRemoveReportsIt) {
  EXPECT_FALSE(state::load("nothing"));
  EXPECT_FALSE(state::remove("nothing"));
  state::save(sample("a"));
  EXPECT_TRUE(state::remove("a"));
  EXPECT_FALSE(state::load("a"));
}

TEST_F(StateDir, LoadAllSortsAndSkipsBrokenFiles) {
  state::save(sample("zeta"));
  state::save(sample("alpha"));
  std::ofstream(dir_ / "broken.json") << "{not json";
  auto all = state::load_all();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].cluster, "alpha");
  EXPECT_EQ(all[1].cluster, "zeta");
  EXPECT_THROW(state::load("broken"), Error);
}

TEST(StateDirRules, EnvironmentDecidesTheFolder) {
  unsetenv("CLUSTERCTL_STATE_DIR");
  setenv("XDG_STATE_HOME", "/x/state", 1);
  EXPECT_EQ(state::state_dir(), "/x/state/clusterctl");
  unsetenv("XDG_STATE_HOME");
  const char* home = std::getenv("HOME");
  if (home) {
    EXPECT_EQ(state::state_dir(), std::string(home) + "/.local/state/clusterctl");
  }
  setenv("CLUSTERCTL_STATE_DIR", "/y", 1);
  EXPECT_EQ(state::state_dir(), "/y");
  unsetenv("CLUSTERCTL_STATE_DIR");
}

}  // namespace
