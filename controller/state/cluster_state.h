#pragma once
// The record of a running cluster, written by `clusterctl up` and read by `status`, `logs`,
// `down` and by `clusterctl run MODEL` (which sends its prompt to the running cluster whose
// model_id matches). One JSON file per cluster in state_dir(), named <cluster>.json, replaced
// atomically (temp file + rename) so a reader never sees half a file.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace clusterctl::state {

struct NodeState {
  std::string name;
  std::string host;  // where SSH goes (the cluster file's `host`)
  int ranks = 1;
  int threads = 0;                       // 0: one per core
  std::string link_interface;            // e.g. tb0 ("" for a one-machine cluster)
  std::string link_address;              // the node's IPv4 address on the link ("" for a one-machine cluster)
  std::vector<std::string> shard_paths;  // on the node, one per rank
};

struct ClusterState {
  std::string cluster;      // the cluster's name; also the state file's name
  std::string config_path;  // absolute path of the cluster file
  std::string model_id;     // what `clusterctl run MODEL` matches: the model file's stem or the model name
  std::string model_path;   // the model file on the controller ("" when given by name only)
  std::string endpoint;     // rank 0's HTTP API, "http://HOST:PORT"
  std::string token_file;   // "" = the API needs no token
  std::string token_copy;   // the token file's copy on the head node, which `down` removes ("" = none)
  std::string head_node;    // the node mpirun runs on (the first node)
  std::string head_host;
  int64_t mpirun_pid = 0;  // on the head node (its process group is the job)
  std::string log_path;    // mpirun's output (rank 0's log) on the head node
  std::string split;       // the share of each rank, e.g. "1,1,1"
  std::vector<NodeState> nodes;
  int64_t started_at = 0;  // unix seconds
  // `restart: on-failure`: the supervisor process on this machine, and how often it restarted the job.
  int64_t supervisor_pid = 0;
  int restarts = 0;
  std::string last_restart;  // what the last restart did, e.g. "node3 lost; 2 nodes, 12.3 s to recover"
  // While the supervisor restarts the job: why and since when (the rest of the state still
  // describes the job that failed); "" otherwise.
  std::string restarting;

  int total_ranks() const;
};

// $CLUSTERCTL_STATE_DIR, else $XDG_STATE_HOME/clusterctl, else ~/.local/state/clusterctl.
std::string state_dir();

// <state_dir>/<cluster>.json
std::string state_path(const std::string& cluster);

// Writes <state_dir>/FILE_NAME atomically (temp file + rename), 0600 in a 0700 folder.
void write_state_file(const std::string& file_name, const std::string& text);

// Writes the state atomically (creating the folder). Throws clusterctl::Error on failure.
void save(const ClusterState& s);

// The state of cluster `name`, or nullopt when none is recorded. Throws clusterctl::Error when
// the file exists but cannot be read or parsed (naming the file and how to get rid of it).
std::optional<ClusterState> load(const std::string& name);

// Every recorded cluster, sorted by name; unreadable files are skipped (with a warning on stderr).
std::vector<ClusterState> load_all();

// Deletes the state of cluster `name`; false when there was none.
bool remove(const std::string& name);

// JSON form (the file's content), for `status --json` and tests.
std::string to_json(const ClusterState& s, int indent = 2);
ClusterState from_json(const std::string& text);  // throws clusterctl::Error

}  // namespace clusterctl::state
