#pragma once
// What the multi-rank tests share: the programs under test, an mpirun line for N local ranks of
// clusterctl-worker, a temporary folder, and stories260K's reference prompts.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

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

// stories260K's five reference prompts, each with the first `n_tokens` of llama.cpp's greedy
// tokens for it (tests/data/reference/stories260K-greedy.json).
struct ReferencePrompt {
  std::string text;
  std::vector<int32_t> llama_cpp_ids;
};
inline std::vector<ReferencePrompt> stories_reference_prompts(size_t n_tokens) {
  std::ifstream in(std::string(CLUSTERCTL_SOURCE_DIR) + "/tests/data/reference/stories260K-greedy.json");
  const auto reference = nlohmann::json::parse(in);
  std::vector<ReferencePrompt> out;
  for (const auto& p : reference["prompts"]) {
    auto ids = p["generated_ids"].get<std::vector<int32_t>>();
    ids.resize(n_tokens);
    out.push_back({p["prompt"], std::move(ids)});
  }
  return out;
}

}  // namespace clusterctl::test
