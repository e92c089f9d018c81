#pragma once
// Starting the serving job on the head node, detached from the SSH session, and stopping it:
// the job is mpirun's process group (mpirun ends the orteds and ranks it started on the other
// nodes); what survives that is found on each node by its command line and ended by pid.
#include <chrono>
#include <string>
#include <vector>

#include "controller/preflight/node_shell.h"

namespace clusterctl::launch {

// Writes `hostfile_text` to `hostfile` (when not empty) and starts `command` in the background
// in its own session (setsid, or a job-control process group where there is no setsid), with
// its output in `log_path`. Returns mpirun's pid, which is also its process group. Throws
// StepError(node, "launch", ...).
long start_detached(preflight::NodeShell& head, const std::string& node_name, const std::string& work_dir,
                    const std::string& hostfile, const std::string& hostfile_text, const std::string& command,
                    const std::string& log_path);

bool process_alive(preflight::NodeShell& shell, long pid);

// TERM to the process group, up to `grace` for it to end, then KILL. True when it is gone.
bool stop_process_group(preflight::NodeShell& shell, long pgid, std::chrono::milliseconds grace);

// What identifies our processes on a node.
struct JobMarks {
  std::string worker_dir;   // the node's shard folder: in every rank's command line (--model DIR)
  std::string hnp_address;  // "tcp://10.77.2.1:" in our orteds' command lines (mpirun's address); may be ""
  long mpirun_pid = 0;      // on the head node only
};

struct LeftoverProcess {
  long pid = 0;
  std::string what;  // "clusterctl-worker", "orted", "mpirun"
  std::string args;
};

// Our clusterctl-worker, orted and mpirun processes still running on the node.
std::vector<LeftoverProcess> find_leftovers(preflight::NodeShell& shell, const JobMarks& marks);

// Ends them (TERM, then KILL) and returns what still runs afterwards.
std::vector<LeftoverProcess> end_leftovers(preflight::NodeShell& shell, const JobMarks& marks);

// Writes the token file `local` to `remote` on the node as a file only its owner can read
// (mode 600 from its creation, whatever the node's umask: written under umask 077 to a temporary
// name, then renamed), with no checksum record beside it. Throws StepError(node, "copy token file").
void place_token_copy(preflight::NodeShell& shell, const std::string& node_name, const std::string& local,
                      const std::string& remote);
// Removes it (and the checksum record an older clusterctl kept beside it). Throws on failure.
void remove_token_copy(preflight::NodeShell& shell, const std::string& remote);

// The last `lines` lines of a file on the node ("" when unreadable).
std::string tail_file(preflight::NodeShell& shell, const std::string& path, int lines);

}  // namespace clusterctl::launch
