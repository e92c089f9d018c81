#include "controller/preflight/node_shell.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "controller/ssh/stop_rule.h"

namespace clusterctl::preflight {

std::string shell_path(const std::string& path) {
  if (path.starts_with("~/")) return "\"$HOME\"/" + ssh::shell_quote(path.substr(2));
  return ssh::shell_quote(path);
}

ssh::SshTarget ssh_target(const config::ClusterConfig& c, const config::NodeConfig& n) {
  ssh::SshTarget t;
  t.host = n.host;
  t.port = n.port;
  t.user = n.user;
  t.identity = n.identity;
  t.known_hosts = c.ssh.known_hosts;
  t.connect_timeout_s = c.ssh.connect_timeout_s;
  return t;
}

std::unique_ptr<NodeShell> open_node_shell(const config::ClusterConfig& c, const config::NodeConfig& n) {
  if (n.is_local()) return std::make_unique<LocalShell>();
  return std::make_unique<SshShell>(ssh_target(c, n));
}

namespace {

// The stop rule (ssh/stop_rule.h) for the command's process group here, its leader `pid` reaped.
void stop_group(pid_t pid) {
  kill(-pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + ssh::kStopGrace;
  while (kill(-pid, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
    waitpid(pid, nullptr, WNOHANG);
    usleep(50000);
  }
  kill(-pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

}  // namespace

ExecResult LocalShell::run(const std::string& command, std::chrono::milliseconds timeout,
                           const std::atomic<int>* stop) {
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  pid_t pid = fork();
  if (pid < 0) throw Error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    close(out_pipe[0]), close(out_pipe[1]), close(err_pipe[0]), close(err_pipe[1]);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    setpgid(0, 0);  // its own group, so a timeout can end the command's children too
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out_pipe[1]), close(err_pipe[1]);
  ExecResult r;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false, interrupted = false;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    if (stop && *stop) {
      interrupted = true;
      break;
    }
    if (poll(fds, 2, int(std::min<int64_t>(left.count(), 50))) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0)
        sinks[i]->append(buf, size_t(n));
      else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  // Stopped with its pipes still open: what it writes while it cleans up on TERM (mpirun ending
  // its ranks) must not end it early with SIGPIPE.
  if (timed_out || interrupted) stop_group(pid);
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  if (timed_out || interrupted)
    throw ssh::stopped_error(interrupted ? ssh::SshFailure::interrupted : ssh::SshFailure::timeout, "'" + command + "'",
                             "this machine", timeout, true);
  int status = 0;
  waitpid(pid, &status, 0);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace clusterctl::preflight
