#include "controller/cli/link_bench_job.h"

#include <cctype>
#include <sstream>

#include "controller/config/network_address.h"
#include "controller/launch/interrupt.h"
#include "controller/launch/local_worker.h"
#include "worker/common/error.h"

namespace clusterctl::cli {

std::vector<launch::MachineInfo> probe_machines(const config::ClusterConfig& c) {
  std::vector<launch::MachineInfo> machines(c.nodes.size());
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    try {
      auto shell = preflight::open_node_shell(c, c.nodes[i]);
      machines[i] = launch::probe_machine(*shell, launch::node_worker_path(c.nodes[i]));
    } catch (const std::exception&) {
    }
  }
  return machines;
}

launch::JobSpec link_bench_job(const config::ClusterConfig& c, const preflight::PreflightReport& report,
                               const std::vector<launch::MachineInfo>& machines, std::vector<std::string> worker_args,
                               int ranks_per_node, const std::string& hostfile_tag) {
  const auto& f0 = report.nodes.at(0);
  if (!f0.link_address) throw Error(c.nodes[0].name + " has no address on its link");
  launch::JobSpec job;
  job.link_cidr = c.nodes[0].link && c.nodes[0].link->cidr ? c.nodes[0].link->cidr->to_string()
                                                           : launch::network_cidr(*f0.link_address, f0.link_prefix);
  job.worker_args = std::move(worker_args);
  job.tag_output = false;
  job.run_as_root = c.nodes[0].user == "root";
  job.worker = launch::node_worker_path(c.nodes[0]);
  job.hostfile = "/tmp/clusterctl-" + hostfile_tag + "-" + c.name + ".hostfile";
  auto nodes = c.nodes;  // with the job's ranks, for sharing the cores
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto& n = nodes[i];
    if (!report.nodes.at(i).link_address) throw Error(n.name + " has no address on its link");
    if (ranks_per_node > 0) n.ranks = ranks_per_node;
    launch::JobNode node;
    node.address = config::ipv4_to_string(*report.nodes[i].link_address);
    node.ranks = n.ranks;
    node.worker = machines.at(i).worker.empty() ? launch::node_worker_path(n) : machines[i].worker;
    if (n.link) node.tcp_interface = n.link->tcp_interface;
    job.nodes.push_back(node);
  }
  const auto loads = launch::machine_loads(nodes, machines);
  for (size_t i = 0; i < nodes.size(); ++i)
    job.nodes[i].ranks_on_machine = loads.at(launch::machine_key(machines.at(i), nodes[i])).ranks;
  for (const auto& [key, load] : loads) launch::share_cores(job, load.ranks, load.cores, false);
  return job;
}

ssh::ExecResult run_link_bench(preflight::NodeShell& head, const std::string& head_name, const launch::JobSpec& job,
                               std::chrono::milliseconds timeout) {
  const std::string hostfile = ssh::shell_quote(job.hostfile);
  std::string cmd = preflight::kNodePath;
  const std::string hosts = launch::hostfile_text(job);
  if (!hosts.empty()) cmd += "printf '%s' " + ssh::shell_quote(hosts) + " > " + hostfile + " && ";
  cmd += launch::shell_command(launch::mpirun_argv(job)) + " 2>&1; s=$?; rm -f " + hostfile + "; exit $s";
  launch::InterruptGuard interrupt_guard;
  try {
    return head.run(cmd, timeout, &launch::interrupt_signal());
  } catch (const ssh::SshError& e) {
    // mpirun's process group was ended before its shell could remove the hostfile.
    try {
      head.run("rm -f " + hostfile);
    } catch (const std::exception&) {
    }
    if (e.kind() != ssh::SshFailure::interrupted) throw;
    throw launch::Interrupted(
        launch::interrupt_signal(),
        e.fix().starts_with("stopped")
            ? "mpirun was stopped on " + head_name + ", and with it the ranks it started on every node"
            : "mpirun could not be stopped on " + head_name + " and may still run there with its ranks");
  }
}

std::string why_it_stopped(const std::string& out, const config::ClusterConfig& c, const launch::JobSpec& job) {
  std::istringstream in(out);
  std::vector<std::string> ours, mpirun, all;
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" -*") == std::string::npos) continue;
    for (size_t i = 0; i < job.nodes.size() && i < c.nodes.size(); ++i) {
      const std::string node = "node " + job.nodes[i].address;
      const auto at = line.find(node);
      const auto end = at + node.size();
      if (at != std::string::npos && (end == line.size() || !std::isdigit(static_cast<unsigned char>(line[end]))))
        line.insert(end, " (" + c.nodes[i].name + ")");
    }
    all.push_back(line);
    if (line.find("noticed") != std::string::npos || line.find("Primary job") != std::string::npos ||
        line.find("was unable") != std::string::npos || line.find("non-zero") != std::string::npos ||
        line.find("Host key") != std::string::npos || line.find("lost communication") != std::string::npos ||
        line.find("Remote daemon") != std::string::npos)
      mpirun.push_back(line);
    if (line.find("error:") != std::string::npos) ours.push_back(line);
  }
  const auto& pick = !ours.empty() ? ours : !mpirun.empty() ? mpirun : all;
  std::string s;
  for (size_t i = pick.size() > 4 ? pick.size() - 4 : 0; i < pick.size(); ++i) s += "\n  | " + pick[i];
  return s;
}

}  // namespace clusterctl::cli
