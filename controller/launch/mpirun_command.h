#pragma once
// The one builder of mpirun command lines: a cluster's serving job (`up`) and a job of N ranks on
// this machine (`run/bench/serve --ranks N`, a one-node job), and the cluster's hostfile. Pure
// text from the cluster file and what preflight found, so it can be tested without a cluster.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace clusterctl::launch {

struct JobNode {
  std::string address;  // where mpirun reaches the node: its link address ("localhost" for this machine)
  int ranks = 1;
  int threads = 0;            // 0: the worker's default (one per core)
  std::string model_dir;      // the node's shard folder (the worker's --model)
  std::string worker;         // the worker's absolute path on the node ("" = JobSpec::worker)
  std::string link_type;      // its cluster link's type ("thunderbolt", "ethernet"; "" = none), for the dashboard
  std::string tcp_interface;  // the link's tcp_interface: where its ranks' tcp transport listens ("" = the link)
  int ranks_on_machine = 0;   // the ranks of every node on its machine (--ranks-on-machine; 0: not told)
};

struct JobSpec {
  std::vector<JobNode> nodes;    // rank order: node by node
  std::string link_cidr;         // "10.77.2.0/24"; "" for a one-machine job (no TCP between nodes)
  bool yield_when_idle = false;  // ranks outnumber the cores they share
  bool oversubscribe = false;    // one machine with more ranks than cores
  bool run_as_root = false;      // mpirun refuses root unless told
  bool tag_output = true;        // each output line tagged with its rank: the cluster's log
  std::string worker;            // the worker executable, where a node names none of its own
  std::string hostfile;          // its path on the head node
  std::string listen_host;       // rank 0's --host
  int listen_port = 8080;
  std::string model_id;
  std::string token_file;                 // on the head node; "" = none
  int context = 0;                        // --ctx; 0 = the worker's default
  int parallel = 0;                       // --parallel; 0 = the worker's default
  std::string draft;                      // --draft (rank 0 drafts); "" = none
  int draft_max = 0;                      // --draft-max; 0 = the worker's default
  std::vector<std::string> network_args;  // --allreduce, --wire-format, --emulate-link from the link
  std::vector<std::string> serve_args;    // liveness (--heartbeat-link, ...) and api (--cors-origin, ...)
  // Every rank runs the worker with these arguments (a local `--ranks N` job, a benchmark over the
  // link), plus its node's --tcp-interface, instead of the serving job the fields above describe.
  std::optional<std::vector<std::string>> worker_args;
};

// The one rule for ranks sharing a machine's cores: a rank waiting in a collective busy-polls,
// so ranks that fill the cores must yield them (llama3-1b Q4_0, 2 ranks on 2 cores: 3.4 tok/s
// polling, 9.3 yielding; 8 ms instead of 61 us per small all-reduce over TCP); more ranks than
// cores need --oversubscribe on a one-machine job (a cluster's hostfile gives mpirun the slots).
// Applied once per machine; a rule one machine needs holds for the job.
void share_cores(JobSpec& job, int ranks, int cores, bool one_machine);

// `ranks` ranks of `worker` on this machine, each with `worker_args` as given, as `as_root`
// (mpirun refuses root unless told); its output untagged, as the worker prints it.
JobSpec local_job(int ranks, int cores, bool as_root, const std::string& worker,
                  const std::vector<std::string>& worker_args);

// "10.77.2.1 slots=1\n..." (empty for a one-machine job).
std::string hostfile_text(const JobSpec& job);

// mpirun and its arguments: one app context per node (so every node's ranks get that node's
// shard folder and thread count), each pinned to the node with -H ADDRESS:RANKS when the job
// spans a link.
std::vector<std::string> mpirun_argv(const JobSpec& job);

// The argv as one POSIX shell command line.
std::string shell_command(const std::vector<std::string>& argv);

// "10.77.2.7" with prefix 24 -> "10.77.2.0/24".
std::string network_cidr(uint32_t address, int prefix);

}  // namespace clusterctl::launch
