#pragma once
// Runs real processes (mpirun, clusterctl) for the multi-rank tests: a shell command with its
// stdout and stderr captured in files, waited for with a deadline.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace clusterctl::test {

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out, err;
  double seconds = 0;
};

// A command started in the background (its own process group, so a test can end it all).
class Process {
 public:
  explicit Process(const std::string& command, const std::string& tag = "p") {
    static int counter = 0;
    const auto dir = std::filesystem::temp_directory_path();
    out_ = (dir / ("mpi_test_" + std::to_string(getpid()) + "_" + tag + std::to_string(++counter) + ".out")).string();
    err_ = out_.substr(0, out_.size() - 4) + ".err";
    const std::string cmd = "exec " + command + " >" + out_ + " 2>" + err_;
    t0_ = std::chrono::steady_clock::now();
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Process() {
    if (pid_ > 0 && !done_) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove(out_);
    std::filesystem::remove(err_);
  }
  pid_t pid() const { return pid_; }
  std::string out_so_far() const { return read_text(out_); }
  std::string err_so_far() const { return read_text(err_); }

  // Waits up to `timeout`; on timeout kills the whole group and reports exit code -1.
  ProcessResult wait(std::chrono::duration<double> timeout) {
    ProcessResult r;
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const pid_t got = waitpid(pid_, &status, WNOHANG);
      if (got == pid_) {
        done_ = true;
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        kill(-pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        done_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    r.out = read_text(out_);
    r.err = read_text(err_);
    return r;
  }

 private:
  pid_t pid_ = -1;
  bool done_ = false;
  std::string out_, err_;
  std::chrono::steady_clock::time_point t0_;
};

inline ProcessResult run_command(const std::string& command, double timeout_s = 300) {
  Process p(command);
  return p.wait(std::chrono::duration<double>(timeout_s));
}

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Process ids whose environment has OMPI_COMM_WORLD_RANK (ranks of any job), with that rank,
// limited to descendants of `ancestor`.
inline std::vector<std::pair<pid_t, int>> mpi_ranks_under(pid_t ancestor) {
  std::vector<std::pair<pid_t, int>> out;
  auto parent_of = [](pid_t p) -> pid_t {
    std::string stat = read_text("/proc/" + std::to_string(p) + "/stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream in(stat.substr(close + 2));
    char state;
    pid_t ppid = 0;
    in >> state >> ppid;
    return ppid;
  };
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    pid_t p = pid;
    bool under = false;
    for (int depth = 0; depth < 8 && p > 1; ++depth) {
      p = parent_of(p);
      if (p == ancestor) {
        under = true;
        break;
      }
    }
    if (!under) continue;
    const std::string env = read_text("/proc/" + name + "/environ");
    const std::string key = std::string("OMPI_COMM_WORLD_RANK=");
    for (size_t at = 0; at < env.size();) {
      const size_t end = env.find('\0', at);
      const std::string var = env.substr(at, end == std::string::npos ? std::string::npos : end - at);
      if (var.rfind(key, 0) == 0) out.push_back({pid, std::stoi(var.substr(key.size()))});
      if (end == std::string::npos) break;
      at = end + 1;
    }
  }
  return out;
}

}  // namespace clusterctl::test
