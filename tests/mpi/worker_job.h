#pragma once
// What the multi-rank tests share: the programs under test, an mpirun line for N local ranks of
// clusterctl-worker, and a temporary folder.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

namespace clusterctl::test {

namespace fs = std::filesystem;

inline const std::string kWorker = CLUSTERCTL_WORKER_BIN;
inline const std::string kCli = CLUSTERCTL_CLI_BIN;

inline std::string mpirun(int ranks, const std::string& args) {
  std::string cmd = "mpirun -np " + std::to_string(ranks) + " --bind-to none --oversubscribe";
  if (geteuid() == 0) cmd += " --allow-run-as-root";  // CI containers run as root
  // Busy-polling ranks beyond the cores starve each other (test-cluster-recipe finding 4).
  if (ranks > static_cast<int>(std::thread::hardware_concurrency())) cmd += " --mca mpi_yield_when_idle 1";
  return cmd + " " + kWorker + " " + args;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("clusterctl_mpi_" + std::to_string(getpid()) + "_" + std::to_string(rand()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

}  // namespace clusterctl::test
