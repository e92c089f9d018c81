#include "controller/launch/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "controller/launch/cluster_up.h"
#include "controller/launch/http_probe.h"
#include "controller/launch/step_error.h"
#include "controller/launch/stop_job.h"
#include "worker/common/error.h"

namespace clusterctl::launch {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_stop(int) { g_stop = true; }

std::string now_text() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return buf;
}

// Sleeps up to `d`, waking early on a stop signal.
void nap(std::chrono::milliseconds d) {
  const auto until = Clock::now() + d;
  while (!g_stop && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

// The nodes the failure names: the heartbeat's "(rank R, LINK-ADDRESS) is lost" in /health's 503
// or in the log.
bool named_lost(const std::string& problem, const state::NodeState& n) {
  return !n.link_address.empty() && problem.find(", " + n.link_address + ")") != std::string::npos;
}

class Supervisor {
 public:
  Supervisor(std::string cluster, const SuperviseOptions& o) : cluster_(std::move(cluster)), o_(o) {}

  int run() {
    log("supervising cluster '" + cluster_ + "' (restart: on-failure), pid " + std::to_string(getpid()));
    int misses = 0;
    while (!g_stop) {
      auto s = state::load(cluster_);
      if (!s) {
        log("cluster '" + cluster_ + "' is no longer recorded (down): the supervisor ends");
        return 0;
      }
      if (s->supervisor_pid != 0 && s->supervisor_pid != getpid()) {
        log("cluster '" + cluster_ + "' has another supervisor (pid " + std::to_string(s->supervisor_pid) +
            "): this one ends");
        return 0;
      }
      std::string token, why;
      try {
        token = read_token(s->token_file);
      } catch (const Error&) {
      }
      auto health = http_get(s->endpoint, "/health", std::chrono::seconds(3), token, &why);
      if (health && health->status == 200) {
        misses = 0;
        nap(o_.poll);
        continue;
      }
      std::string problem;
      if (health) {
        problem = "HTTP " + std::to_string(health->status) + " " + health->body.substr(0, 400);
        misses = o_.misses;  // it answers that it cannot serve: no point in waiting
      } else {
        problem = why;
        ++misses;
      }
      if (misses < o_.misses) {
        nap(o_.poll);
        continue;
      }
      log("cluster '" + cluster_ + "' does not answer at " + s->endpoint + " (" + problem + "); restarting it");
      recover(*s, problem);
      misses = 0;
    }
    log("stopped by a signal: the supervisor ends (the job is left as it is)");
    return 0;
  }

 private:
  void log(const std::string& line) {
    std::fprintf(o_.out, "[%s] %s\n", now_text().c_str(), line.c_str());
    std::fflush(o_.out);
  }

  // Stops what is left, drops lost nodes, brings the cluster up on the rest. On failure waits and
  // tries again (the next loop sees the cluster still not answering).
  void recover(const state::ClusterState& s, const std::string& problem) {
    const auto t0 = Clock::now();
    config::ClusterConfig file;
    try {
      file = config::load_cluster_config(s.config_path);
    } catch (const std::exception& e) {
      log(std::string("cannot read the cluster file: ") + e.what() + "; trying again in 10 s");
      nap(std::chrono::seconds(10));
      return;
    }
    config::ClusterConfig current;
    try {
      current = config_for_state(file, s);
    } catch (const std::exception& e) {
      log(std::string(e.what()) + "; trying again in 10 s");
      nap(std::chrono::seconds(10));
      return;
    }
    std::vector<std::string> lost;
    for (const auto& n : s.nodes)
      if (named_lost(problem, n)) lost.push_back(n.name);
    // Until the new job is recorded, `status` says the job is being restarted and why, rather than
    // showing the failed job as if nothing were being done about it.
    auto restarting = s;
    restarting.restarting = "since " + now_text() + ": " + problem.substr(0, 200);
    try {
      state::save(restarting);
    } catch (const std::exception& e) {
      log(std::string("cannot record the restart: ") + e.what());
    }
    // What is left of the job, on every node that can be reached.
    std::vector<std::unique_ptr<preflight::NodeShell>> shells;
    auto stopped = stop_job_everywhere(current, shells, job_record(s));
    for (size_t i = 0; i < current.nodes.size(); ++i)
      if (!shells[i] && std::find(lost.begin(), lost.end(), current.nodes[i].name) == lost.end())
        lost.push_back(current.nodes[i].name);  // unreachable over SSH: gone as far as a restart goes
    if (!stopped.remaining.empty()) log("warning: could not stop everything: " + stopped.describe());
    shells.clear();
    config::ClusterConfig next = current;
    std::erase_if(next.nodes, [&](const config::NodeConfig& n) {
      return std::find(lost.begin(), lost.end(), n.name) != lost.end();
    });
    std::string lost_text;
    for (const auto& n : lost) lost_text += (lost_text.empty() ? "" : ", ") + n;
    if (next.nodes.empty()) {
      log("no node is left to run on (lost: " + lost_text + "); trying again in 10 s");
      nap(std::chrono::seconds(10));
      return;
    }
    for (const auto& n : lost) log("dropping " + n + " (lost or unreachable)");
    if (next.nodes.size() == 1 && !next.nodes[0].link) next.nodes[0].link.reset();
    if (o_.resolve_layout) o_.resolve_layout(next, o_.out);  // `layout: auto`: chosen anew for these nodes
    UpOptions up;
    up.health_timeout = o_.health_timeout;
    up.controller_version = o_.controller_version;
    up.out = o_.out;
    up.supervisor_pid = getpid();
    up.restarts = s.restarts + 1;
    up.last_restart = (lost.empty() ? std::string("the job failed") : lost_text + " lost") + "; restarting";
    try {
      auto fresh = bring_up(next, s.config_path, up);
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      char text[256];
      std::snprintf(text, sizeof text, "%s%s; running on %zu node(s), %d rank(s); %.1f s to recover",
                    lost.empty() ? "the job failed" : lost_text.c_str(), lost.empty() ? "" : " lost",
                    fresh.nodes.size(), fresh.total_ranks(), secs);
      fresh.supervisor_pid = getpid();
      fresh.restarts = s.restarts + 1;
      fresh.last_restart = text;
      state::save(fresh);
      log(std::string("restarted: ") + text);
    } catch (const StepError& e) {
      if (up_was_interrupted()) g_stop = true;  // `down` ended the supervisor while it restarted the job
      log("the restart failed at node " + e.node() + ", step " + e.step() + ": " + e.cause() + " (fix: " + e.fix() +
          "); trying again in 10 s");
      // Keep the cluster recorded, so `status` shows it NOT ANSWERING and `down` clears it away.
      auto kept = restarting;
      kept.restarting += "; the last try failed at " + e.node() + ": " + e.cause().substr(0, 200) + "; trying again";
      kept.mpirun_pid = 0;
      kept.nodes.clear();
      for (const auto& n : s.nodes)
        if (std::find(lost.begin(), lost.end(), n.name) == lost.end()) kept.nodes.push_back(n);
      if (!kept.nodes.empty()) state::save(kept);
      nap(std::chrono::seconds(10));
    } catch (const std::exception& e) {
      // `down` during the restart's checks, cut or copies: launch::Interrupted, no StepError.
      if (up_was_interrupted()) g_stop = true;
      log(std::string("the restart failed: ") + e.what() + "; trying again in 10 s");
      nap(std::chrono::seconds(10));
    }
  }

  std::string cluster_;
  const SuperviseOptions& o_;
};

}  // namespace

config::ClusterConfig config_for_state(const config::ClusterConfig& config, const state::ClusterState& s) {
  config::ClusterConfig out = config;
  out.nodes.clear();
  for (const auto& n : s.nodes) {
    auto it = std::find_if(config.nodes.begin(), config.nodes.end(), [&](const auto& c) { return c.name == n.name; });
    if (it == config.nodes.end())
      throw Error(config.file + " no longer has node '" + n.name + "' of the running cluster '" + s.cluster +
                  "'; restore the file as it was at 'up'");
    out.nodes.push_back(*it);
  }
  return out;
}

int supervise(const std::string& cluster, const SuperviseOptions& options) {
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGHUP, SIG_IGN);
  return Supervisor(cluster, options).run();
}

long start_supervisor(const std::string& cluster) {
  std::error_code ec;
  const std::string exe = fs::read_symlink("/proc/self/exe", ec).string();
  if (ec || exe.empty()) throw Error("cannot find this clusterctl's own path to start the supervisor");
  fs::create_directories(state::state_dir(), ec);
  const std::string log = (fs::path(state::state_dir()) / (cluster + ".supervisor.log")).string();
  const pid_t pid = fork();
  if (pid < 0) throw Error(std::string("cannot start the supervisor: fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    setsid();
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (in >= 0) dup2(in, 0);
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
    }
    for (int fd = 3; fd < 1024; ++fd) ::close(fd);  // no socket or pipe of `up` stays open in it
    execl(exe.c_str(), "clusterctl", "supervise", cluster.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

bool stop_supervisor(const state::ClusterState& s, std::chrono::seconds grace) {
  if (s.supervisor_pid <= 1) return false;
  const pid_t pid = static_cast<pid_t>(s.supervisor_pid);
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  if (cmdline.find("supervise " + s.cluster) == std::string::npos) return false;  // gone, or another process
  kill(pid, SIGTERM);
  const auto until = Clock::now() + grace;
  while (Clock::now() < until) {
    waitpid(pid, nullptr, WNOHANG);  // (when it is our child)
    if (kill(pid, 0) != 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  return true;
}

}  // namespace clusterctl::launch
