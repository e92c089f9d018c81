#include "controller/state/node_speeds.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "controller/state/cluster_state.h"

namespace clusterctl::state {
namespace {

constexpr const char* kFile = "node-speeds.cache";
constexpr const char* kLinkFile = "link-speeds.cache";

nlohmann::json read_all(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nlohmann::json::object();
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

// A figure of the record, 0 where it is absent or not a number (the cache is only a cache).
double number(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
}
void read_pair(const nlohmann::json& j, const char* key, double (&out)[2]) {
  if (!j.contains(key) || !j[key].is_array() || j[key].size() != 2) return;
  for (size_t i = 0; i < 2; ++i) out[i] = j[key][i].is_number() ? j[key][i].get<double>() : 0.0;
}

}  // namespace

void read_row_parallel(const nlohmann::json& j, NodeSpeedRecord& r) {
  if (!j.is_object() || !j.contains("chunks") || !j.contains("slowdown")) return;
  const auto &c = j["chunks"], &s = j["slowdown"];
  if (!c.is_array() || !s.is_array() || c.size() != 2 || s.size() != 2) return;
  for (size_t i = 0; i < 2; ++i)
    if (!c[i].is_number_integer() || c[i].get<int64_t>() <= 0 || !s[i].is_number() || !(s[i].get<double>() > 0)) return;
  if (c[0].get<int64_t>() >= c[1].get<int64_t>()) return;  // two widths, the narrower first
  for (size_t i = 0; i < 2; ++i) r.row_parallel_chunks[i] = c[i].get<int64_t>(), r.row_parallel_slowdown[i] = s[i];
  // The decode kernels' ratios, absent from an older probe's record: 1, no cost added.
  if (!j.contains("decode_slowdown")) return;
  const auto& d = j["decode_slowdown"];
  if (!d.is_array() || d.size() != 2 || !d[0].is_number() || !d[1].is_number() || !(d[0].get<double>() > 0) ||
      !(d[1].get<double>() > 0))
    return;
  for (size_t i = 0; i < 2; ++i) r.row_parallel_decode_slowdown[i] = d[i];
}

void read_stream_ratios(const nlohmann::json& j, NodeSpeedRecord& r) {
  if (!j.is_object() || j.size() > 64) return;
  for (const auto& [name, ratio] : j.items()) {
    const bool named = !name.empty() && name.size() <= 16 && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
    if (named && ratio.is_number() && ratio.get<double>() >= 0.05 && ratio.get<double>() <= 20)
      r.stream_ratios[name] = ratio.get<double>();
  }
}

std::string node_speeds_path() { return state_dir() + "/" + kFile; }

void record_node_speed(const std::string& cluster, const std::string& node, const NodeSpeedRecord& r) {
  nlohmann::json all = read_all(node_speeds_path());
  all[cluster][node] = {{"bandwidth_gb_s", r.bandwidth_gbs},
                        {"compute_gflops", r.compute_gflops},
                        {"decode_gflops", r.decode_gflops},
                        {"one_rank_bandwidth_gb_s", r.one_rank_bandwidth_gbs},
                        {"one_rank_decode_gflops", r.one_rank_decode_gflops},
                        {"stream_gb_s", r.stream_gbs},
                        {"stream_flops_per_byte", r.stream_flops_per_byte},
                        {"one_rank_stream_gb_s", r.one_rank_stream_gbs},
                        {"tile8_gflops", r.tile8_gflops},
                        {"row_parallel",
                         {{"chunks", {r.row_parallel_chunks[0], r.row_parallel_chunks[1]}},
                          {"slowdown", {r.row_parallel_slowdown[0], r.row_parallel_slowdown[1]}},
                          {"decode_slowdown", {r.row_parallel_decode_slowdown[0], r.row_parallel_decode_slowdown[1]}}}},
                        {"shares_machine_with", r.shares_machine_with},
                        {"meeting_us", r.meeting_us},
                        {"prompt_meeting_us", r.prompt_meeting_us},
                        {"attention_head_ns", {r.attention_head_ns[0], r.attention_head_ns[1]}},
                        {"attention_position_ns", {r.attention_position_ns[0], r.attention_position_ns[1]}},
                        {"silu_ns", r.silu_ns},
                        {"norm_ns", r.norm_ns},
                        {"threads", r.threads},
                        {"cores", r.cores},
                        {"machine_threads", r.machine_threads},
                        {"handover_us", {r.handover_us[0], r.handover_us[1]}},
                        {"stream_ratios", r.stream_ratios},
                        {"method", r.method},
                        {"measured_at", r.measured_at}};
  write_state_file(kFile, all.dump(2) + "\n");
}

std::optional<NodeSpeedRecord> recorded_node_speed(const std::string& cluster, const std::string& node) {
  const nlohmann::json all = read_all(node_speeds_path());
  if (!all.contains(cluster) || !all[cluster].is_object() || !all[cluster].contains(node)) return std::nullopt;
  const auto& j = all[cluster][node];
  NodeSpeedRecord r;
  r.bandwidth_gbs = j.value("bandwidth_gb_s", 0.0);
  r.compute_gflops = j.value("compute_gflops", 0.0);
  r.decode_gflops = j.value("decode_gflops", 0.0);  // absent from records before it was measured
  r.shares_machine_with = j.value("shares_machine_with", 0);
  r.meeting_us = j.value("meeting_us", 0.0);
  r.prompt_meeting_us = j.value("prompt_meeting_us", 0.0);
  r.one_rank_bandwidth_gbs = j.value("one_rank_bandwidth_gb_s", 0.0);
  r.one_rank_decode_gflops = j.value("one_rank_decode_gflops", 0.0);
  r.stream_gbs = j.value("stream_gb_s", 0.0);
  r.stream_flops_per_byte = j.value("stream_flops_per_byte", 0.0);
  r.one_rank_stream_gbs = j.value("one_rank_stream_gb_s", 0.0);
  r.tile8_gflops = j.value("tile8_gflops", 0.0);
  if (j.contains("row_parallel")) read_row_parallel(j["row_parallel"], r);
  // Absent (or not two numbers) in records before the probe measured them: not measured.
  read_pair(j, "attention_head_ns", r.attention_head_ns);
  read_pair(j, "attention_position_ns", r.attention_position_ns);
  r.silu_ns = number(j, "silu_ns");
  r.norm_ns = number(j, "norm_ns");
  r.threads = j.value("threads", 0);
  r.cores = j.value("cores", 0);
  r.machine_threads = j.value("machine_threads", 0);
  read_pair(j, "handover_us", r.handover_us);  // absent before the probe measured it: -1, not measured
  if (j.contains("stream_ratios")) read_stream_ratios(j["stream_ratios"], r);
  r.method = j.value("method", "");
  r.measured_at = j.value("measured_at", int64_t(0));
  if (!(r.bandwidth_gbs > 0) || !(r.compute_gflops > 0)) return std::nullopt;
  return r;
}

void record_link_speed(const std::string& cluster, const LinkSpeedRecord& r) {
  nlohmann::json all = read_all(state_dir() + "/" + kLinkFile);
  all[cluster] = {{"latency_us", r.latency_us},
                  {"bandwidth_gb_s", r.bandwidth_gbs},
                  {"ranks", r.ranks},
                  {"method", r.method},
                  {"measured_at", r.measured_at}};
  write_state_file(kLinkFile, all.dump(2) + "\n");
}

std::optional<LinkSpeedRecord> recorded_link_speed(const std::string& cluster) {
  const nlohmann::json all = read_all(state_dir() + "/" + kLinkFile);
  if (!all.contains(cluster) || !all[cluster].is_object()) return std::nullopt;
  const auto& j = all[cluster];
  LinkSpeedRecord r;
  r.latency_us = j.value("latency_us", 0.0);
  r.bandwidth_gbs = j.value("bandwidth_gb_s", 0.0);
  r.ranks = j.value("ranks", 0);
  r.method = j.value("method", "");
  r.measured_at = j.value("measured_at", int64_t(0));
  if (!(r.latency_us > 0) || !(r.bandwidth_gbs > 0)) return std::nullopt;
  return r;
}

}  // namespace clusterctl::state
