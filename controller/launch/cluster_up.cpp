#include "controller/launch/cluster_up.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "controller/http/http_client.h"
#include "controller/launch/http_probe.h"
#include "controller/launch/interrupt.h"
#include "controller/launch/job_control.h"
#include "controller/launch/local_worker.h"
#include "controller/launch/machine_probe.h"
#include "controller/launch/mpirun_command.h"
#include "controller/launch/step_error.h"
#include "controller/launch/stop_job.h"
#include "controller/placement/shard_cache.h"
#include "controller/placement/shard_copy.h"
#include "controller/placement/split.h"
#include "controller/preflight/memory_fit.h"
#include "controller/preflight/node_shell.h"
#include "controller/preflight/preflight.h"
#include "controller/preflight/report.h"
#include "controller/ssh/parallel.h"
#include "controller/ssh/sftp_upload.h"
#include "worker/common/human_bytes.h"

namespace clusterctl::launch {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string model_file(const config::ClusterConfig& c) {
  return c.model_path.empty() ? config::expand_home("~/.cache/clusterctl/models/" + c.model + ".gguf") : c.model_path;
}

std::string model_id(const config::ClusterConfig& c) {
  // A model pulled from Hugging Face is served under the name the cluster file gives it.
  if (!c.model_hub.empty()) return c.model_hub;
  return c.model_path.empty() ? c.model : fs::path(c.model_path).stem().string();
}

std::string endpoint_of(const config::ClusterConfig& c) {
  auto hp = config::parse_host_port(c.api.listen, nullptr);
  std::string host = hp ? hp->host : "127.0.0.1";
  const int port = hp ? hp->port : 8080;
  if (host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]")
    host = c.nodes.front().is_local() ? "127.0.0.1" : c.nodes.front().host;
  return "http://" + host + ":" + std::to_string(port);
}

std::string read_token(const std::string& token_file) {
  return token_file.empty() ? "" : http::read_token_file(token_file);
}

// The worker flags of the cluster file's `liveness:` and the rest of `api:`.
std::vector<std::string> serve_args(const config::ClusterConfig& c, const std::string& link_cidr) {
  const auto seconds = [](double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", s);
    return std::string(buf);
  };
  std::vector<std::string> a = {"--step-timeout", seconds(c.liveness.step_timeout_s)};
  if (!link_cidr.empty())
    a.insert(a.end(), {"--heartbeat-link", link_cidr, "--heartbeat-interval", seconds(c.liveness.heartbeat_interval_s),
                       "--node-timeout", seconds(c.liveness.node_timeout_s)});
  for (const auto& o : c.api.cors_origins) a.insert(a.end(), {"--cors-origin", o});
  for (const auto& h : c.api.allowed_hosts) a.insert(a.end(), {"--allowed-host", h});
  if (c.api.health_open) a.push_back("--health-open");
  return a;
}

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

class Bringup {
 public:
  Bringup(const config::ClusterConfig& c, std::string config_path, const UpOptions& o)
      : c_(c), config_path_(std::move(config_path)), o_(o) {}

  state::ClusterState run() {
    const auto t0 = Clock::now();
    check_listen_address();
    preflight();
    {
      // SIGINT/SIGTERM during the cut or the copies stop them (the cut's temp folder removed, each
      // node's partial copy kept to resume from) and end `up` with what to run again.
      InterruptGuard interrupt_guard;
      const auto interrupted = [&](int sig) {
        return Interrupted(sig, "up: interrupted by " + signal_name(sig) + " " + placement_doing_ +
                                    "; nothing was started (run 'clusterctl up " + config_path_ + "' again)");
      };
      try {
        placement();
      } catch (const std::exception&) {
        if (const int sig = interrupt_signal()) throw interrupted(sig);
        throw;
      }
      placement_doing_ = "after the copies";  // a signal noted once they had ended
      if (const int sig = interrupt_signal()) throw interrupted(sig);
    }
    try {
      // SIGINT/SIGTERM while `up` waits for the job end the wait and stop the job, instead of `up`
      // dying and leaving an unrecorded job running on the nodes.
      InterruptGuard interrupt_guard;
      launch();
      wait_healthy();
    } catch (const StepError& e) {
      undo();
      throw StepError(e.node(), e.step(), e.cause() + stop_summary(), e.fix());
    } catch (const std::exception& e) {
      undo();
      throw StepError(c_.nodes[0].name, "launch", e.what() + stop_summary(),
                      "see the log on " + c_.nodes[0].name + ": " + log_path_);
    }
    auto s = record();
    std::fprintf(o_.out, "up in %.1f s\n", since(t0));
    return s;
  }

 private:
  void step(const char* what) {
    std::fprintf(o_.out, "%s\n", what);
    std::fflush(o_.out);
  }

  // Rank 0 listens on the head node; a loopback address there cannot be reached from here.
  void check_listen_address() {
    const auto& head = c_.nodes[0];
    auto hp = config::parse_host_port(c_.api.listen, nullptr);
    if (head.is_local() || !hp) return;
    if (hp->host == "localhost" || hp->host.starts_with("127.") || hp->host == "[::1]")
      throw StepError(head.name, "api",
                      "api.listen is " + c_.api.listen + ", so rank 0 on " + head.name +
                          " would accept connections from " + head.name + " itself only",
                      "set 'api: {listen: 0.0.0.0:" + std::to_string(hp->port) + ", token_file: ...}' in " +
                          config_path_ + " (or " + head.name + "'s address); nothing was started");
  }

  void preflight() {
    step("preflight: checking every node (ssh, os, memory, link, worker, mpirun, reach)");
    auto t = Clock::now();
    report_ = run_preflight_interruptible(c_, o_.controller_version, "up",
                                          "nothing was started (run 'clusterctl up " + config_path_ + "' again)");
    if (!report_.ok()) {
      std::string node, check, cause, fix;
      for (const auto& r : report_.results)
        if (r.status == preflight::CheckStatus::fail) {
          node = r.node, check = r.check, cause = r.cause, fix = r.fix;
          break;
        }
      // Every failure is listed: a user fixes them all in one go, as with a compiler.
      const auto failed = std::count_if(report_.results.begin(), report_.results.end(),
                                        [](const auto& r) { return r.status == preflight::CheckStatus::fail; });
      const std::string nothing = "nothing was started ('clusterctl doctor " + config_path_ + "' shows every check)";
      // A model too big for the nodes fails memory (and often disk) on every node: one cause.
      if (auto s = preflight::memory_shortfall(c_, report_)) {
        const auto others = std::count_if(report_.results.begin(), report_.results.end(), [](const auto& r) {
          return r.status == preflight::CheckStatus::fail && r.check != "memory" && r.check != "disk";
        });
        throw StepError(
            s->node, "preflight (memory)", s->cause,
            s->fix + "; nothing was copied or started" +
                (others ? " (" + std::to_string(others) + " other check(s) failed too: 'clusterctl doctor " +
                              config_path_ + "' shows them)"
                        : " ('clusterctl plan " + config_path_ + "' shows each rank's share)"));
      }
      if (failed > 1)
        throw StepError(node, "preflight (" + check + ")",
                        cause + "; " + std::to_string(failed) + " checks failed:" + preflight::failures_text(report_),
                        "fix each failed check above; " + nothing);
      throw StepError(node, "preflight (" + check + ")", cause, fix + "; " + nothing);
    }
    std::fprintf(o_.out, "  all checks passed on %zu node(s) in %.1f s\n", c_.nodes.size(), since(t));
  }

  void placement() {
    split_ = placement::rank_split(c_, report_);
    // `layout: auto` is resolved by the caller (up and the supervisor, through plan); unresolved, the exact default.
    layout_ = model::parse_layout(c_.layout).value_or(model::Layout::split_attention);
    const std::string model = model_file(c_);
    auto t = Clock::now();
    placement_doing_ = "while cutting the shards; the unfinished cut was removed";
    try {
      shards_ = placement::cut_or_reuse(model, split_.total_ranks, split_.weights, layout_, &interrupt_signal());
    } catch (const placement::ImpossibleSplit& e) {
      throw StepError("controller", "split",
                      "the split " + split_.text + " over " + std::to_string(split_.total_ranks) +
                          " rank(s) cannot be cut from " + model + ": " + e.what(),
                      "change the nodes' 'weight' (or 'memory:', or 'ranks') in " + config_path_ +
                          " so the split comes out as suggested; nothing was started");
    } catch (const Error& e) {
      throw StepError("controller", "cut shards", e.what(),
                      "check the model file " + model + " and free disk space in " + placement::controller_cache_dir());
    }
    std::fprintf(o_.out, "placement: %d rank(s), split %s, %s; shards %s %s (%s) in %s\n", split_.total_ranks,
                 split_.text.c_str(), model::layout_name(layout_), shards_.reused ? "reused from" : "cut into",
                 shards_.key.c_str(), human_bytes(shards_.total_bytes).c_str(), shards_.dir.c_str());
    if (!shards_.reused) std::fprintf(o_.out, "  cut in %.1f s\n", since(t));
    placement_doing_ = "while connecting to the nodes";
    connect();
    std::fprintf(o_.out, "copying each node its shard(s):\n");
    t = Clock::now();
    placement_doing_ =
        "while copying the shards; the copies were stopped on every node (each resumes where it stopped on the next "
        "up)";
    copies_ = placement::copy_shards(c_, shells_, shards_, split_, o_.out, &interrupt_signal());
    uint64_t total = 0;
    for (const auto& cp : copies_) total += cp.bytes_sent;
    copied_bytes_ = total;
    std::fprintf(o_.out, "  %s copied in total in %.1f s\n", human_bytes(total).c_str(), since(t));
  }

  void connect() {
    shells_.resize(c_.nodes.size());
    std::vector<std::optional<StepError>> errors(c_.nodes.size());
    ssh::for_each_node_in_parallel(c_.nodes.size(), [&](size_t i) {
      try {
        shells_[i] = preflight::open_node_shell(c_, c_.nodes[i]);
      } catch (const ssh::SshError& e) {
        errors[i].emplace(c_.nodes[i].name, "ssh", e.cause(), e.fix());
      } catch (const std::exception& e) {
        errors[i].emplace(c_.nodes[i].name, "ssh", e.what(), "run 'clusterctl doctor " + config_path_ + "'");
      }
    });
    for (auto& e : errors)
      if (e) throw *e;
  }

  void launch() {
    const auto& head = c_.nodes[0];
    preflight::NodeShell& head_shell = *shells_[0];
    // Work dir on the head node: its cache dir (the parent of its shard folder when copied).
    const std::string work_dir = copies_[0].in_place ? config::expand_home(head.cache_dir)
                                                     : fs::path(copies_[0].shard_dir).parent_path().string();
    log_path_ = (fs::path(work_dir) / (c_.name + ".log")).string();

    JobSpec job;
    const bool one_machine = c_.nodes.size() == 1 && head.is_local();
    if (c_.nodes.size() > 1) {
      const auto& f0 = report_.nodes[0];
      job.link_cidr = c_.nodes[0].link && c_.nodes[0].link->cidr ? c_.nodes[0].link->cidr->to_string()
                                                                 : network_cidr(*f0.link_address, f0.link_prefix);
      hnp_address_ = "tcp://" + config::ipv4_to_string(*f0.link_address) + ":";
    }
    if (const auto& l = c_.nodes[0].link) {
      if (!l->allreduce.empty()) job.network_args.insert(job.network_args.end(), {"--allreduce", l->allreduce});
      if (!l->transport.empty()) job.network_args.insert(job.network_args.end(), {"--transport", l->transport});
      if (!l->wire_format.empty()) job.network_args.insert(job.network_args.end(), {"--wire-format", l->wire_format});
      if (!l->emulate.empty()) job.network_args.insert(job.network_args.end(), {"--emulate-link", l->emulate});
      if (!l->overlap_prompt.empty())
        job.network_args.insert(job.network_args.end(), {"--overlap-prompt", l->overlap_prompt});
    }
    // Ranks that share a machine's cores (namespaces/VMs of one host count together).
    std::vector<MachineInfo> machines(c_.nodes.size());
    ssh::for_each_node_in_parallel(c_.nodes.size(),
                                   [&](size_t i) { machines[i] = probe_machine(*shells_[i], node_worker(i)); });
    const auto loads = machine_loads(c_.nodes, machines);
    for (const auto& [key, l] : loads) share_cores(job, l.ranks, l.cores, one_machine);
    job.run_as_root = head.user == "root";
    job.worker = node_worker(0);
    job.hostfile = (fs::path(work_dir) / (c_.name + ".hostfile")).string();
    auto hp = config::parse_host_port(c_.api.listen, nullptr);
    job.listen_host = hp && !hp->host.empty() ? hp->host : "0.0.0.0";
    job.listen_port = hp ? hp->port : 8080;
    job.model_id = model_id(c_);
    job.context = c_.context;
    job.parallel = c_.api.parallel;
    job.draft = c_.api.draft;
    job.draft_max = c_.api.draft_max;
    if (!c_.api.token_file.empty()) job.token_file = place_token(work_dir);
    job.serve_args = serve_args(c_, job.link_cidr);
    for (size_t i = 0; i < c_.nodes.size(); ++i) {
      JobNode n;
      n.address = job.link_cidr.empty() ? "localhost" : config::ipv4_to_string(*report_.nodes[i].link_address);
      n.ranks = c_.nodes[i].ranks;
      n.threads = c_.nodes[i].threads;
      n.model_dir = copies_[i].shard_dir;
      n.worker = machines[i].worker;
      n.ranks_on_machine = loads.at(machine_key(machines[i], c_.nodes[i])).ranks;
      if (c_.nodes[i].link && !job.link_cidr.empty()) {
        n.link_type = std::string(config::link_type_name(c_.nodes[i].link->type));
        n.tcp_interface = c_.nodes[i].link->tcp_interface;
      }
      job.nodes.push_back(n);
    }
    const std::string command = shell_command(mpirun_argv(job));
    std::fprintf(o_.out, "launch on %s: %s\n  log: %s\n", head.name.c_str(), command.c_str(), log_path_.c_str());
    std::fflush(o_.out);
    pid_ = start_detached(head_shell, head.name, work_dir, job.hostfile, hostfile_text(job), command, log_path_);
  }

  // The node's `worker:`; on this machine the default is the one beside clusterctl.
  std::string node_worker(size_t i) const { return node_worker_path(c_.nodes[i]); }

  // The token file must be readable by rank 0 on the head node: copied there (mode 600 whatever
  // the node's umask, no checksum beside it), and removed again by `down`.
  std::string place_token(const std::string& work_dir) {
    if (c_.nodes[0].is_local()) return c_.api.token_file;
    const std::string target = (fs::path(work_dir) / (c_.name + ".token")).string();
    place_token_copy(*shells_[0], c_.nodes[0].name, c_.api.token_file, target);
    token_copy_ = target;
    return target;
  }

  void wait_healthy() {
    const std::string endpoint = endpoint_of(c_);
    const std::string token = read_token(c_.api.token_file);
    std::fprintf(o_.out, "waiting for %s/health (every rank loaded), at most %lld s\n", endpoint.c_str(),
                 static_cast<long long>(o_.health_timeout.count()));
    std::fflush(o_.out);
    const auto t0 = Clock::now();
    const auto deadline = t0 + o_.health_timeout;
    auto next_alive_check = t0 + std::chrono::seconds(1);
    std::string why;
    for (;;) {
      auto reply = http_get(endpoint, "/health", std::chrono::seconds(2), token, &why);
      if (reply && reply->status == 200) break;
      if (reply) why = "HTTP " + std::to_string(reply->status) + " " + reply->body.substr(0, 200);
      if (interrupt_signal())
        throw StepError(c_.nodes[0].name, "health check", "interrupted while waiting for " + endpoint + "/health",
                        "run 'clusterctl up " + config_path_ + "' again when you are ready to wait");
      if (Clock::now() >= next_alive_check) {
        if (!process_alive(*shells_[0], pid_)) {
          std::string log = tail_file(*shells_[0], log_path_, 15);
          pid_exited_ = true;
          throw StepError(c_.nodes[0].name, "launch",
                          "mpirun exited before the cluster answered " + endpoint + "/health; the end of its log (" +
                              log_path_ + "):\n" + indent(log),
                          "fix the cause above (the worker's message names it), then run 'clusterctl up " +
                              config_path_ + "' again");
        }
        next_alive_check = Clock::now() + std::chrono::seconds(1);
      }
      if (Clock::now() >= deadline)
        throw StepError(c_.nodes[0].name, "health check",
                        "rank 0 did not answer " + endpoint + "/health with 200 within " +
                            std::to_string(o_.health_timeout.count()) + " s (last: " + why +
                            "); the end of the log:\n" + indent(tail_file(*shells_[0], log_path_, 15)),
                        "check that " + endpoint + " is reachable from this machine (api.listen in " + config_path_ +
                            "), read the log " + log_path_ + " on " + c_.nodes[0].name +
                            ", or give big models more time with --timeout");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::fprintf(o_.out, "  healthy after %.1f s\n", since(t0));
  }

  static std::string indent(const std::string& text) {
    if (text.empty()) return "    | (empty)";
    std::string out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out += "    | " + line + "\n";
    if (!out.empty()) out.pop_back();
    return out;
  }

  JobRecord job_record() const {
    JobRecord j;
    j.head = 0;
    j.mpirun_pid = pid_;
    j.hnp_address = hnp_address_;
    j.token_copy = token_copy_;
    for (const auto& cp : copies_) j.worker_dirs.push_back(cp.shard_dir);
    return j;
  }

  // Stops what this `up` started, on every node.
  void undo() {
    if (copies_.empty()) return;  // nothing was launched
    std::fprintf(o_.out, "stopping what was started on every node ...\n");
    std::fflush(o_.out);
    stop_ = stop_job_everywhere(c_, shells_, job_record());
    stopped_ = true;
  }

  std::string stop_summary() const {
    if (!stopped_) return "";
    if (stop_.clean()) return "\n  everything this 'up' started was stopped: nothing is left running on any node";
    return "\n  WARNING: could not stop everything: " + stop_.describe();
  }

  state::ClusterState record() {
    state::ClusterState s;
    s.cluster = c_.name;
    s.config_path = fs::absolute(config_path_).lexically_normal().string();
    s.model_id = model_id(c_);
    s.model_path = fs::absolute(model_file(c_)).lexically_normal().string();
    s.endpoint = endpoint_of(c_);
    s.token_file = c_.api.token_file;
    s.token_copy = token_copy_;
    s.head_node = c_.nodes[0].name;
    s.head_host = c_.nodes[0].host;
    s.mpirun_pid = pid_;
    s.log_path = log_path_;
    s.split = split_.text;
    for (size_t i = 0; i < c_.nodes.size(); ++i) {
      state::NodeState n;
      n.name = c_.nodes[i].name;
      n.host = c_.nodes[i].host;
      n.ranks = c_.nodes[i].ranks;
      n.threads = c_.nodes[i].threads;
      n.link_interface = report_.nodes[i].link_interface;
      n.link_address = report_.nodes[i].link_address ? config::ipv4_to_string(*report_.nodes[i].link_address) : "";
      n.shard_paths = copies_[i].shard_paths;
      s.nodes.push_back(n);
    }
    s.started_at = std::time(nullptr);
    s.supervisor_pid = o_.supervisor_pid;
    s.restarts = o_.restarts;
    s.last_restart = o_.last_restart;
    state::save(s);
    return s;
  }

  const config::ClusterConfig& c_;
  std::string config_path_;
  const UpOptions& o_;
  preflight::PreflightReport report_;
  placement::RankSplit split_;
  model::Layout layout_ = model::Layout::split_attention;
  placement::ShardSet shards_;
  std::vector<std::unique_ptr<preflight::NodeShell>> shells_;
  std::vector<placement::NodeCopy> copies_;
  std::string placement_doing_ = "while placing the model";  // for the message of an interrupted placement
  uint64_t copied_bytes_ = 0;
  std::string log_path_, hnp_address_, token_copy_;
  long pid_ = 0;
  bool pid_exited_ = false, stopped_ = false;
  StopReport stop_;
};

}  // namespace

bool up_was_interrupted() { return interrupt_signal() != 0; }

state::ClusterState bring_up(const config::ClusterConfig& config, const std::string& config_path,
                             const UpOptions& options) {
  return Bringup(config, config_path, options).run();
}

}  // namespace clusterctl::launch
