#include "controller/launch/mpirun_command.h"

#include <cstdint>

#include "controller/config/network_address.h"
#include "controller/ssh/ssh_session.h"

namespace clusterctl::launch {

std::string hostfile_text(const JobSpec& job) {
  if (job.link_cidr.empty()) return "";
  std::string text;
  for (const auto& n : job.nodes) text += n.address + " slots=" + std::to_string(n.ranks) + "\n";
  return text;
}

namespace {

void add(std::vector<std::string>& argv, std::initializer_list<std::string> args) {
  argv.insert(argv.end(), args.begin(), args.end());
}

}  // namespace

void share_cores(JobSpec& job, int ranks, int cores, bool one_machine) {
  job.yield_when_idle = job.yield_when_idle || ranks >= cores;
  job.oversubscribe = job.oversubscribe || (one_machine && ranks > cores);
}

JobSpec local_job(int ranks, int cores, bool as_root, const std::string& worker,
                  const std::vector<std::string>& worker_args) {
  JobSpec job;
  job.nodes.push_back({"localhost", ranks, 0, "", "", "", "", ranks});
  job.worker = worker;
  job.worker_args = worker_args;
  job.run_as_root = as_root;
  job.tag_output = false;
  share_cores(job, ranks, cores, /*one_machine=*/true);
  return job;
}

std::vector<std::string> mpirun_argv(const JobSpec& job) {
  std::vector<std::string> a = {"mpirun", "--bind-to", "none"};
  if (job.tag_output) add(a, {"--tag-output"});
  if (job.run_as_root) add(a, {"--allow-run-as-root"});
  if (job.oversubscribe) add(a, {"--oversubscribe"});
  if (!job.link_cidr.empty()) {
    // Both the MPI data path (btl) and Open MPI's own control traffic (oob) go over the chosen
    // link only, named by its network: interface names differ between machines.
    add(a, {"--hostfile", job.hostfile});
    add(a, {"--mca", "btl_tcp_if_include", job.link_cidr});
    add(a, {"--mca", "oob_tcp_if_include", job.link_cidr});
  }
  if (job.yield_when_idle) add(a, {"--mca", "mpi_yield_when_idle", "1"});
  for (size_t i = 0; i < job.nodes.size(); ++i) {
    const auto& n = job.nodes[i];
    if (i) add(a, {":"});
    add(a, {"-np", std::to_string(n.ranks)});
    if (!job.link_cidr.empty()) add(a, {"-H", n.address + ":" + std::to_string(n.ranks)});
    if (job.worker_args) {
      add(a, {n.worker.empty() ? job.worker : n.worker});
      a.insert(a.end(), job.worker_args->begin(), job.worker_args->end());
      if (!n.tcp_interface.empty()) add(a, {"--tcp-interface", n.tcp_interface});
      if (n.ranks_on_machine > 0) add(a, {"--ranks-on-machine", std::to_string(n.ranks_on_machine)});
      continue;
    }
    add(a, {n.worker.empty() ? job.worker : n.worker, "--model", n.model_dir, "--serve", "--host", job.listen_host,
            "--port", std::to_string(job.listen_port), "--model-id", job.model_id});
    if (n.threads > 0) add(a, {"--threads", std::to_string(n.threads)});
    if (job.context > 0) add(a, {"--ctx", std::to_string(job.context)});
    if (job.parallel > 0) add(a, {"--parallel", std::to_string(job.parallel)});
    if (!job.token_file.empty()) add(a, {"--token-file", job.token_file});
    if (!job.draft.empty()) add(a, {"--draft", job.draft});
    if (job.draft_max > 0) add(a, {"--draft-max", std::to_string(job.draft_max)});
    if (!n.link_type.empty()) add(a, {"--link-type", n.link_type});
    if (!n.tcp_interface.empty()) add(a, {"--tcp-interface", n.tcp_interface});
    if (n.ranks_on_machine > 0) add(a, {"--ranks-on-machine", std::to_string(n.ranks_on_machine)});
    a.insert(a.end(), job.network_args.begin(), job.network_args.end());
    a.insert(a.end(), job.serve_args.begin(), job.serve_args.end());
  }
  return a;
}

std::string shell_command(const std::vector<std::string>& argv) {
  std::string cmd;
  for (const auto& s : argv) {
    if (!cmd.empty()) cmd += ' ';
    bool plain =
        !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,=@") ==
                          std::string::npos;
    cmd += plain ? s : ssh::shell_quote(s);
  }
  return cmd;
}

std::string network_cidr(uint32_t address, int prefix) {
  const uint32_t mask = prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1);
  return config::ipv4_to_string(address & mask) + "/" + std::to_string(prefix);
}

}  // namespace clusterctl::launch
