#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "controller/config/diagnostics.h"
#include "controller/config/network_address.h"

namespace clusterctl::config {

enum class LinkType { thunderbolt, ethernet };
std::string_view link_type_name(LinkType t);

// The network a node's ranks talk over: an interface name (e.g. bridge0, tb0) or a CIDR.
// Interface names differ between machines (and namespaces); a CIDR does not, so the launcher
// pins MPI by CIDR when it has one.
struct LinkConfig {
  LinkType type = LinkType::ethernet;
  std::string interface;  // empty when given by CIDR
  std::optional<Ipv4Cidr> cidr;
  // The all-reduce over this link (every node's link must agree): an algorithm name or "" (auto),
  // a wire format or "" (double, exact), and an EMULATED link "latency=300us,bandwidth=10gbit" or "".
  std::string allreduce, transport, wire_format, emulate;
  std::string overlap_prompt;  // "auto" (or "": the default), "on" or "off": the worker's --overlap-prompt
  // Where this node's rank listens for the tcp transport, when not the link itself: CIDRs or
  // interface names (the worker's --tcp-interface). Per node: interface names differ.
  std::string tcp_interface;
  SourcePos pos;

  std::string describe() const;  // "thunderbolt tb0" or "ethernet 10.0.0.0/24"
};

struct NodeConfig {
  std::string name;
  std::string host;
  int port = 22;
  std::string user;      // default: the user running clusterctl
  std::string identity;  // private key file; empty: ssh-agent and ~/.ssh defaults
  int ranks = 1;
  int threads = 0;  // 0: one per core, decided on the node
  bool weight_by_memory = false;
  double weight = 1.0;        // relative share of the model; ignored when weight_by_memory
  uint64_t memory_limit = 0;  // `memory:` bytes clusterctl may use on the node (0: all it has free)
  std::optional<LinkConfig> link;
  std::string cache_dir;  // where the node keeps its shards
  std::string worker;     // the worker executable on the node
  SourcePos pos;          // the node's entry in `nodes:`
  SourcePos host_pos;

  // `host: localhost` (or 127.0.0.1) is this machine: commands run without SSH.
  bool is_local() const;
  std::string ssh_address() const;  // user@host:port
};

struct ApiConfig {
  std::string listen = "127.0.0.1:8080";
  std::string token_file;  // empty: no token required
  int parallel = 4;        // sequences decoding at once, one KV-cache slot of `context` tokens each
  // Speculative decoding: "ngram" (prompt lookup), the path of a draft model on rank 0's node
  // (the first node), or "" (none); draft_max: most tokens drafted per round (0: the worker's 8).
  std::string draft;
  int draft_max = 0;
  std::vector<std::string> cors_origins;   // web page origins allowed to call the API (--cors-origin)
  std::vector<std::string> allowed_hosts;  // more Host names a tokenless loopback server answers (--allowed-host)
  bool health_open = false;                // GET /health without the token (--health-open)
};

// How a running cluster notices a lost node (the worker's --heartbeat-interval, --node-timeout,
// --step-timeout): a heartbeat over the link while idle or working, and a deadline per step.
struct LivenessConfig {
  double heartbeat_interval_s = 1;
  double node_timeout_s = 6;    // a node silent this long is lost: 503 naming it, the job ends
  double step_timeout_s = 300;  // one collective call of a step; 0: no deadline
};

struct SshConfig {
  std::string known_hosts;  // default ~/.ssh/known_hosts (expanded)
  int connect_timeout_s = 10;
};

struct ClusterConfig {
  std::string file;  // the cluster file, as given
  std::string name;
  std::string model;       // as written: a path, a model name, or a model on Hugging Face
  std::string model_path;  // a path, resolved against the cluster file's folder; empty for a name
  // "ORG/NAME:QUANT" (controller/hub/model_ref.h) when `model` names a model on Hugging Face and
  // no file of that name exists: `up` pulls it and sets model_path to the pulled file.
  std::string model_hub;
  int context = 0;  // tokens of KV cache per sequence; 0: the model's, capped at 4096
  std::string cache_dir;
  ApiConfig api;
  LivenessConfig liveness;
  // `layout:` "" (split-attention), "split-attention", "replicated-attention" (model::Layout) or
  // "auto": the one `plan` predicts faster from the nodes' measured speeds and the link.
  std::string layout;
  bool restart_on_failure = false;  // `restart: on-failure`: a supervisor restarts the job over the nodes left
  SshConfig ssh;
  std::vector<NodeConfig> nodes;
  SourcePos nodes_pos;  // the `nodes:` list, where split problems are reported

  int total_ranks() const;
  bool weights_by_memory() const;
  // The node's share of the model (0..1) from the configured weights; by-memory shares need
  // the nodes' free memory, which only preflight knows.
  double weight_share(size_t node_index) const;
};

// The largest cluster file read (a real one is a few KiB).
constexpr size_t kMaxClusterFileBytes = 1 << 20;

// Reads and validates a cluster file. Throws ConfigError listing every problem found
// (file:line:column, message, hint), or clusterctl::Error when the file cannot be read.
ClusterConfig load_cluster_config(const std::string& path);

// The same, from text already in memory; `file` names it in diagnostics and anchors relative paths.
ClusterConfig parse_cluster_config(const std::string& text, const std::string& file);

// Problems of the split that need the model's shape: more ranks than attention heads (a head
// is the smallest unit the tensor-parallel split divides), a context longer than the model's.
std::vector<Diagnostic> check_against_model(const ClusterConfig& config, int n_head, int n_ctx_train);

// "1GiB", "512MiB", "1.5G", "2048" (bytes) -> bytes; nullopt when not a size.
std::optional<uint64_t> parse_byte_size(const std::string& text);

// Expands a leading "~/" to $HOME.
std::string expand_home(const std::string& path);

}  // namespace clusterctl::config
