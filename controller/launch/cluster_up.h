#pragma once
// `clusterctl up`: preflight, placement (split, cut, copy), launch on the head node, wait for
// /health, record the state. All or nothing: when a step fails, everything started on any node
// is stopped before the error (launch::StepError: node, step, cause, fix) is thrown.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "controller/config/cluster_config.h"
#include "controller/state/cluster_state.h"

namespace clusterctl::launch {

struct UpOptions {
  std::chrono::seconds health_timeout{120};
  std::string controller_version;
  std::FILE* out = stdout;  // progress and per-step lines
  // Recorded with the new job's state when the supervisor restarts it, so the state never names
  // the new job without its supervisor (`down` in between would leave the supervisor running).
  int64_t supervisor_pid = 0;
  int restarts = 0;
  std::string last_restart;
};

// Throws StepError for a failed step (after stopping what was started), clusterctl::Error otherwise.
state::ClusterState bring_up(const config::ClusterConfig& config, const std::string& config_path,
                             const UpOptions& options);

// Whether the last bring_up ended because of SIGINT/SIGTERM.
bool up_was_interrupted();

// The model file up cuts (the `model:` path, or ~/.cache/clusterctl/models/NAME.gguf) and the
// id clients use for it (the file's stem, or the model name).
std::string model_file(const config::ClusterConfig& config);
std::string model_id(const config::ClusterConfig& config);

// "http://HOST:PORT" of rank 0's API: api.listen, with a wildcard host (0.0.0.0, ::, empty)
// replaced by the head node's address (its `host`, or 127.0.0.1 for this machine).
std::string endpoint_of(const config::ClusterConfig& config);

// The worker flags of the cluster file's `liveness:` (the heartbeat only for a job over a link:
// `link_cidr` not empty) and of `api:` beyond listen/token_file/parallel.
std::vector<std::string> serve_args(const config::ClusterConfig& config, const std::string& link_cidr);

// The content of the API token file on this machine ("" for none). Throws when unreadable.
std::string read_token(const std::string& token_file);

}  // namespace clusterctl::launch
