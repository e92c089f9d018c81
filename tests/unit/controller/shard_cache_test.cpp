// The controller's cut of a model into shards (placement/shard_cache.h) leaves no half-written
// folder behind: a stopped cut removes its temp folder, and a cut's temp folder whose process is
// gone (killed before it could clean up) is removed by the next cut. On stories260K (../shared).
#include "controller/placement/shard_cache.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/unit/shared_data.h"
#include "worker/model/shard_file.h"

namespace fs = std::filesystem;
using namespace clusterctl;

namespace {

class ShardCache : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("shard_cache_test-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "cut");
    setenv("CLUSTERCTL_CACHE_DIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    unsetenv("CLUSTERCTL_CACHE_DIR");
    fs::remove_all(dir_);
  }
  // The names in cut/, sorted.
  std::vector<std::string> cut_entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_ / "cut")) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  fs::path dir_;
};

// A pid that ran and has ended (reaped), so that no process has it for now.
pid_t ended_pid() {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  return pid;
}

}  // namespace

TEST_F(ShardCache, AStoppedCutLeavesNoFolder) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  std::atomic<int> stop{SIGINT};
  EXPECT_THROW(placement::cut_or_reuse(model, 2, {}, model::Layout::split_attention, &stop), Error);
  EXPECT_EQ(cut_entries(), std::vector<std::string>{});
  stop = 0;
  const auto set = placement::cut_or_reuse(model, 2, {}, model::Layout::split_attention, &stop);
  EXPECT_FALSE(set.reused);
  ASSERT_EQ(set.files.size(), 2u);
  EXPECT_EQ(cut_entries(), std::vector<std::string>{set.key});
}

TEST_F(ShardCache, ACutRemovesTheTempFoldersOfCutsWhoseProcessIsGone) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  const std::string dead = ".tmp-somemodel-2r-even-" + std::to_string(ended_pid());
  const std::string alive = ".tmp-othermodel-3r-even-" + std::to_string(getppid());  // runs: left alone
  const std::string not_a_cut = ".tmp-notes";
  for (const auto& name : {dead, alive, not_a_cut}) {
    fs::create_directories(dir_ / "cut" / name);
    std::ofstream(dir_ / "cut" / name / "part.gguf") << "half a shard";
  }
  const auto set = placement::cut_or_reuse(model, 2, {});
  auto want = std::vector<std::string>{alive, not_a_cut, set.key};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(cut_entries(), want);
}
