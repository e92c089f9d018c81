#include "controller/cli/mpi_launch.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <thread>

#include "controller/launch/local_worker.h"
#include "controller/launch/mpirun_command.h"
#include "worker/common/error.h"

namespace clusterctl::cli {
namespace {

int parse_ranks(const std::string& v) {
  size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || n < 1) throw Error("--ranks '" + v + "' is not a positive number of ranks");
  return n;
}

// mpirun runs as our child: a SIGTERM or Ctrl-C meant for us must reach it (it forwards the
// signal to every rank and ends them), or the job would outlive the command that started it.
volatile sig_atomic_t g_mpirun_pid = 0;
void forward_to_mpirun(int sig) {
  if (g_mpirun_pid > 0) kill(static_cast<pid_t>(g_mpirun_pid), sig);
}

}  // namespace

std::optional<int> ranks_flag(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--ranks")) {
      if (i + 1 >= argc) throw Error("--ranks needs a number of ranks");
      return parse_ranks(argv[i + 1]);
    }
    if (!std::strncmp(argv[i], "--ranks=", 8)) return parse_ranks(argv[i] + 8);
  }
  return std::nullopt;
}

std::vector<std::string> args_without_ranks(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--ranks")) {
      ++i;
      continue;
    }
    if (!std::strncmp(argv[i], "--ranks=", 8)) continue;
    out.push_back(argv[i]);
  }
  return out;
}

int launch_local_job(int ranks, const std::vector<std::string>& worker_args) {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  // Root may run mpirun only when asked explicitly; the user running clusterctl as root has.
  std::vector<std::string> cmd =
      launch::mpirun_argv(launch::local_job(ranks, cores, geteuid() == 0, launch::local_worker_path(), worker_args));
  std::vector<char*> argv;
  for (auto& s : cmd) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw Error(std::string("cannot start mpirun: ") + std::strerror(errno));
  if (pid == 0) {
    execvp("mpirun", argv.data());
    std::fprintf(stderr, "error: cannot run mpirun (%s): install Open MPI (openmpi-bin)\n", std::strerror(errno));
    _exit(127);
  }
  g_mpirun_pid = pid;
  struct sigaction forward {};
  forward.sa_handler = forward_to_mpirun;
  sigemptyset(&forward.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &forward, nullptr);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_mpirun_pid = 0;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace clusterctl::cli
