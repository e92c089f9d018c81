#pragma once
// Each node's measured memory bandwidth and compute, as `doctor` last measured them, for `plan`'s
// predictions: <state_dir>/node-speeds.cache (JSON; not *.json, which are running clusters),
// keyed by cluster and node name, written temp-then-rename, 0600.
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

namespace clusterctl::state {

struct NodeSpeedRecord {
  double bandwidth_gbs = 0;   // decode-shaped read bandwidth at `threads`
  double compute_gflops = 0;  // matmul-shaped, at `threads`
  double decode_gflops = 0;   // matrix-vector (one token), at `threads`; 0: not measured
  // The decode stream (the matrix-vector kernels over weights read from memory): weight bytes per
  // second, and the stream's flops per byte; 0: not measured (a record of an older probe).
  double stream_gbs = 0, stream_flops_per_byte = 0, one_rank_stream_gbs = 0;
  double tile8_gflops = 0;  // the prompt tiles at 8 tokens (a mixture of experts' per-expert tiles); 0: not measured
  // The prompt tiles' time a flop where a row-parallel matmul sums in chunks of so many columns, over
  // the plain matmul's (tools::measure_row_parallel_slowdown), and the decode kernels' (1 where a
  // record of an older probe has none); chunks 0: not measured.
  int64_t row_parallel_chunks[2] = {0, 0};
  double row_parallel_slowdown[2] = {1, 1}, row_parallel_decode_slowdown[2] = {1, 1};
  // One rank's pool alone while the node's other ranks idle (as while rank 0 drafts); 0: not measured.
  double one_rank_bandwidth_gbs = 0, one_rank_decode_gflops = 0;
  // Other nodes of the cluster on the same machine (same boot id: a test cluster's namespaces,
  // two entries for one host): probed together, each recorded with its ranks' share.
  int shares_machine_with = 0;
  double meeting_us = 0;  // one meeting of a rank's pool threads (an empty parallel_for); 0: not measured
  // What a prompt's matmul of a small matrix costs beyond its flops (tools::measure_prompt_meeting_us);
  // 0: not measured.
  double prompt_meeting_us = 0;
  // A pass's work besides its matmuls, one thread's while its pool's threads all work
  // (tools::VectorWorkRates): a query head's attention over n positions, head_ns + n position_ns at
  // head dimensions 64 and 128, and one element of silu(gate) * up and of an RMS norm. 0: not
  // measured (a record of an older probe: plan falls back to placement::kVectorWorkFallback).
  double attention_head_ns[2] = {0, 0}, attention_position_ns[2] = {0, 0};
  double silu_ns = 0, norm_ns = 0;
  int threads = 0;
  // The machine's cores and the threads of all its nodes' ranks: where the threads outnumber the
  // cores, the figures above are the node's share of what the cores give with no thread waiting
  // for one, and the ranks share the cores in time (placement::core_share); 0: not recorded (an
  // older probe's figures, measured with every rank at once).
  int cores = 0, machine_threads = 0;
  // One synchronisation's cost beyond the ranks' turns on the cores, with one rank beyond them
  // and with `cores` beyond them (tools::measure_handover: this machine's cores + 1 and 2 x cores
  // single-thread ranks). Negative: not measured (an older probe: plan takes
  // placement::kHandoverFallbackS).
  double handover_us[2] = {-1, -1};
  // Each weight type's decode stream GB/s over Q4_0's (tools::measure_stream_ratios), by GGUF's
  // name of the type; a type absent (or an older probe's record): as Q4_0's.
  std::map<std::string, double> stream_ratios{};
  std::string method;       // how it was measured (the probe's own line)
  int64_t measured_at = 0;  // unix seconds
};

std::string node_speeds_path();
// Throws clusterctl::Error when the record cannot be written.
void record_node_speed(const std::string& cluster, const std::string& node, const NodeSpeedRecord& r);
// {"chunks": [C1, C2], "slowdown": [S1, S2]}, as the probe answers and the record keeps it, into
// `r`; anything else (an older probe's answer: absent) leaves it not measured.
void read_row_parallel(const nlohmann::json& j, NodeSpeedRecord& r);
// {"Q6_K": 0.85, ...}, as the probe answers and the record keeps it, into `r`: at most 64 types,
// each name at most 16 letters, digits or '_' and each ratio in [0.05, 20]; anything else is left out.
void read_stream_ratios(const nlohmann::json& j, NodeSpeedRecord& r);
// nullopt when none is recorded (or the cache is unreadable: it is only a cache).
std::optional<NodeSpeedRecord> recorded_node_speed(const std::string& cluster, const std::string& node);

// The link between a cluster's nodes as `doctor` last measured it (one-shot all-reduces in doubles
// over all the cluster's ranks), for `plan`: <state_dir>/link-speeds.cache, keyed by cluster.
struct LinkSpeedRecord {
  double latency_us = 0;     // what the link adds to one all-reduce of a small message
  double bandwidth_gbs = 0;  // bytes one rank sends per second over it
  int ranks = 0;
  std::string method;  // how it was measured, in a line
  int64_t measured_at = 0;
};
void record_link_speed(const std::string& cluster, const LinkSpeedRecord& r);
std::optional<LinkSpeedRecord> recorded_link_speed(const std::string& cluster);

}  // namespace clusterctl::state
