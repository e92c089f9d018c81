#include "controller/launch/stop_job.h"

#include <filesystem>

#include "controller/launch/job_control.h"
#include "controller/ssh/parallel.h"

namespace clusterctl::launch {

JobRecord job_record(const state::ClusterState& s) {
  JobRecord j;
  j.mpirun_pid = s.mpirun_pid;
  if (s.nodes.size() > 1 && !s.nodes[0].link_address.empty()) j.hnp_address = "tcp://" + s.nodes[0].link_address + ":";
  j.token_copy = s.token_copy;
  for (const auto& n : s.nodes)
    j.worker_dirs.push_back(n.shard_paths.empty() ? ""
                                                  : std::filesystem::path(n.shard_paths[0]).parent_path().string());
  return j;
}

std::string StopReport::describe() const {
  std::string s;
  for (const auto& r : remaining) s += (s.empty() ? "" : "; ") + r;
  for (const auto& u : unreachable) s += (s.empty() ? "" : "; ") + u;
  return s;
}

StopReport stop_job_everywhere(const config::ClusterConfig& c,
                               std::vector<std::unique_ptr<preflight::NodeShell>>& shells, const JobRecord& job) {
  shells.resize(c.nodes.size());
  std::vector<std::string> errors(c.nodes.size());
  ssh::for_each_node_in_parallel(c.nodes.size(), [&](size_t i) {
    if (shells[i]) return;
    try {
      shells[i] = preflight::open_node_shell(c, c.nodes[i]);
    } catch (const std::exception& e) {
      errors[i] = c.nodes[i].name + ": cannot connect to check for leftovers (" + e.what() + ")";
    }
  });
  StopReport report;
  if (job.mpirun_pid > 0 && shells[job.head]) {
    try {
      stop_process_group(*shells[job.head], job.mpirun_pid, std::chrono::seconds(10));
    } catch (const std::exception& e) {
      errors[job.head] = c.nodes[job.head].name + ": stopping mpirun failed (" + e.what() + ")";
    }
  }
  // The token is a secret: its copy does not outlive the job (the worker read it at start).
  if (!job.token_copy.empty() && shells[job.head]) {
    try {
      remove_token_copy(*shells[job.head], job.token_copy);
    } catch (const std::exception& e) {
      errors[job.head] =
          c.nodes[job.head].name + ": removing the token's copy " + job.token_copy + " failed (" + e.what() + ")";
    }
  }
  std::vector<std::vector<LeftoverProcess>> left(c.nodes.size());
  ssh::for_each_node_in_parallel(c.nodes.size(), [&](size_t i) {
    if (!shells[i]) return;
    JobMarks marks;
    marks.worker_dir = i < job.worker_dirs.size() ? job.worker_dirs[i] : "";
    marks.hnp_address = job.hnp_address;
    marks.mpirun_pid = i == job.head ? job.mpirun_pid : 0;
    try {
      left[i] = end_leftovers(*shells[i], marks);
    } catch (const std::exception& e) {
      if (errors[i].empty()) errors[i] = c.nodes[i].name + ": checking for leftovers failed (" + e.what() + ")";
    }
  });
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    if (!errors[i].empty()) report.unreachable.push_back(errors[i]);
    for (const auto& p : left[i])
      report.remaining.push_back(c.nodes[i].name + ": " + p.what + " (pid " + std::to_string(p.pid) + ") still runs");
  }
  return report;
}

}  // namespace clusterctl::launch
