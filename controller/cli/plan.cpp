// `clusterctl plan CLUSTER.yaml [--json] [--offline]`: what `up` would do, without doing it: the
// preflight, the split, every rank's slice of the model and its shard's size, each node's need
// against its free memory, and whether the cut is already in the cache.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "clusterctl/version.h"
#include "collectives/algorithms/emulated_link.h"
#include "controller/cli/model_arg.h"
#include "controller/cli/plan_layout.h"
#include "controller/cli/plan_speed.h"
#include "controller/cli/plan_transport.h"
#include "controller/config/cluster_config.h"
#include "controller/launch/cluster_up.h"
#include "controller/launch/interrupt.h"
#include "controller/placement/shard_cache.h"
#include "controller/placement/split.h"
#include "controller/preflight/preflight.h"
#include "controller/preflight/report.h"
#include "controller/state/node_speeds.h"
#include "worker/common/human_bytes.h"
#include "worker/model/kv_cache.h"
#include "worker/model/model.h"
#include "worker/model/shard_file.h"
#include "worker/model/shard_plan.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {
namespace {

struct RankPlan {
  int rank = 0;
  size_t node = 0;
  model::Partition part;
  model::Range kv;
  uint64_t shard_bytes = 0;
  uint64_t kv_bytes = 0;
  placement::RankWork work = {};  // per token, for the speed prediction
};

struct NodePlan {
  int ranks = 0;
  uint64_t shard_bytes = 0, kv_bytes = 0;
  std::optional<uint64_t> free_bytes;  // unknown offline
  bool fits() const { return !free_bytes || shard_bytes + kv_bytes <= *free_bytes; }
};

std::string range(const model::Range& r) { return "[" + std::to_string(r.begin) + "," + std::to_string(r.end) + ")"; }

// Everything `plan` shows beyond the preflight report.
struct ClusterPlan {
  std::string file;      // the cluster file
  bool offline = false;  // no preflight: free memory unknown
  std::string model_path;
  uint64_t model_bytes = 0;
  model::HParams hp;
  model::Layout layout = model::Layout::split_attention;
  placement::RankSplit split;
  placement::ShardSet cut;
  int64_t context = 0;
  std::vector<RankPlan> ranks;
  std::vector<NodePlan> nodes;

  bool all_fit() const {
    return std::all_of(nodes.begin(), nodes.end(), [](const NodePlan& n) { return n.fits(); });
  }
};

// The cut of the model over the split's ranks; an error names the split and what to change.
model::ShardPlan plan_cut(const ClusterPlan& p, const gguf::GgufFile& f) {
  try {
    return model::plan_shards(p.hp, model::SplitUnits::from_model(f, p.hp), p.split.total_ranks, p.split.weights,
                              p.layout);
  } catch (const Error& e) {
    throw Error("the split " + p.split.text + " over " + std::to_string(p.split.total_ranks) +
                " rank(s) cannot be cut from " + p.model_path + ": " + e.what() +
                "; change the nodes' 'weight' (or 'memory:', or 'ranks') in " + p.file);
  }
}

// Each rank's slice and shard size, and each node's shards and KV cache against its free memory.
void plan_ranks(ClusterPlan& p, const config::ClusterConfig& config, const preflight::PreflightReport& report,
                const gguf::GgufFile& f, const model::ShardPlan& shard_plan) {
  p.nodes.resize(config.nodes.size());
  for (size_t n = 0; n < config.nodes.size(); ++n) {
    // Offline, a node's `memory:` stands for what it has: a cluster planned before it is bought.
    if (!p.offline && n < report.nodes.size())
      p.nodes[n].free_bytes = report.nodes[n].mem_usable;
    else if (config.nodes[n].memory_limit > 0)
      p.nodes[n].free_bytes = config.nodes[n].memory_limit;
    for (int r = p.split.first_rank[n]; r < p.split.first_rank[n] + config.nodes[n].ranks; ++r) {
      RankPlan rp{r, n, shard_plan.parts[r], shard_plan.parts[r].kv_heads(p.hp)};
      for (const auto& t : model::shard_tensors(f, p.hp, rp.part)) rp.shard_bytes += t.bytes;
      rp.work = rank_work(f, p.hp, rp.part, n);
      // F16 keys and values of the rank's KV heads (deepseek2: the latent, on every rank): the API's
      // sequences, a slot of the context each.
      rp.kv_bytes = model::KvCache::bytes_per_token(p.hp, rp.part) * static_cast<uint64_t>(p.context) *
                    static_cast<uint64_t>(config.api.parallel);
      p.nodes[n].ranks += 1;
      p.nodes[n].shard_bytes += rp.shard_bytes;
      p.nodes[n].kv_bytes += rp.kv_bytes;
      p.ranks.push_back(rp);
    }
  }
}

ClusterPlan make_plan(const config::ClusterConfig& config, const std::string& file,
                      const preflight::PreflightReport& report, bool offline, model::Layout layout) {
  ClusterPlan p;
  p.file = file;
  p.offline = offline;
  p.layout = layout;
  p.split = placement::rank_split(config, report);
  p.model_path = launch::model_file(config);
  gguf::GgufFile f(p.model_path);
  p.model_bytes = f.file_size();
  p.hp = model::Model::read_hparams(f);
  const model::ShardPlan shard_plan = plan_cut(p, f);
  p.cut = placement::find_cut(f, p.split.total_ranks, p.split.weights, layout);
  p.context = std::min<int64_t>(config.context > 0 ? config.context : 4096, p.hp.n_ctx_train);
  plan_ranks(p, config, report, f, shard_plan);
  return p;
}

const char* split_basis(const config::ClusterConfig& config) {
  return config.weights_by_memory() ? "by free memory" : "by weight";
}

std::vector<std::string> node_names(const config::ClusterConfig& config) {
  std::vector<std::string> names;
  for (const auto& n : config.nodes) names.push_back(n.name);
  return names;
}

void print_plan_json(const ClusterPlan& p, const config::ClusterConfig& config,
                     const preflight::PreflightReport& report, bool ok, const SpeedPlan& speed,
                     const SpeedInputs& inputs, const LayoutChoice& layout, const TransportChoice& transport) {
  nlohmann::json j;
  j["cluster"] = config.name;
  j["file"] = p.file;
  j["model"] = {{"path", p.model_path},
                {"architecture", p.hp.arch},
                {"n_layer", p.hp.n_layer},
                {"n_expert", p.hp.n_expert},
                {"bytes", p.model_bytes}};
  j["split"] = {{"text", p.split.text}, {"ranks", p.split.total_ranks}, {"by", split_basis(config)}};
  j["context"] = p.context;
  j["parallel"] = config.api.parallel;
  for (const auto& r : p.ranks)
    j["ranks"].push_back({{"rank", r.rank},
                          {"node", config.nodes[r.node].name},
                          {"heads", {r.part.q_heads.begin, r.part.q_heads.end}},
                          {"kv_heads", {r.kv.begin, r.kv.end}},
                          {"ffn", {r.part.ffn.begin, r.part.ffn.end}},
                          {"vocab", {r.part.vocab.begin, r.part.vocab.end}},
                          {"experts", {r.part.experts.begin, r.part.experts.end}},
                          {"shard_bytes", r.shard_bytes},
                          {"kv_bytes", r.kv_bytes}});
  for (size_t n = 0; n < p.nodes.size(); ++n) {
    const NodePlan& np = p.nodes[n];
    nlohmann::json node = {{"name", config.nodes[n].name},
                           {"ranks", np.ranks},
                           {"shard_bytes", np.shard_bytes},
                           {"kv_bytes", np.kv_bytes},
                           {"need_bytes", np.shard_bytes + np.kv_bytes},
                           {"fits", np.fits()}};
    node["free_bytes"] = np.free_bytes ? nlohmann::json(*np.free_bytes) : nlohmann::json(nullptr);
    j["nodes"].push_back(node);
  }
  j["cut"] = {{"key", p.cut.key}, {"dir", p.cut.dir}, {"cached", p.cut.reused}};
  j["preflight"] = p.offline ? nlohmann::json(nullptr) : preflight::report_json(config, report);
  j["speed"] = speed_json(speed, inputs, node_names(config));
  j["layout"] = layout_json(layout);
  j["transport"] = transport_json(transport);
  j["ok"] = ok;
  std::cout << j.dump(2) << "\n";
}

// One line per rank: its node and its slice; a mixture of experts also shows which experts the
// rank holds (all, cut to its FFN columns, or whole ones).
void print_rank_table(const ClusterPlan& p, const config::ClusterConfig& config) {
  const char* experts_head = p.hp.n_expert ? "EXPERTS    " : "";
  std::printf("%-5s %-14s %-11s %-10s %-15s %-17s %s%s\n", "RANK", "NODE", "HEADS", "KV HEADS", "FFN", "VOCAB",
              experts_head, "SHARD");
  for (const auto& r : p.ranks) {
    const std::string held = p.hp.n_expert ? (range(r.part.experts) + std::string(11, ' ')).substr(0, 11) : "";
    std::printf("%-5d %-14s %-11s %-10s %-15s %-17s %s%s\n", r.rank, config.nodes[r.node].name.c_str(),
                range(r.part.q_heads).c_str(), range(r.kv).c_str(), range(r.part.ffn).c_str(),
                range(r.part.vocab).c_str(), held.c_str(), human_bytes(r.shard_bytes).c_str());
  }
}

void print_node_table(const ClusterPlan& p, const config::ClusterConfig& config) {
  std::printf("\n%-14s %-6s %-11s %-11s %-11s %-11s %s\n", "NODE", "RANKS", "SHARDS", "KV CACHE", "NEEDS", "FREE",
              "FITS");
  for (size_t n = 0; n < p.nodes.size(); ++n) {
    const NodePlan& np = p.nodes[n];
    std::printf("%-14s %-6d %-11s %-11s %-11s %-11s %s\n", config.nodes[n].name.c_str(), np.ranks,
                human_bytes(np.shard_bytes).c_str(), human_bytes(np.kv_bytes).c_str(),
                human_bytes(np.shard_bytes + np.kv_bytes).c_str(),
                np.free_bytes ? human_bytes(*np.free_bytes).c_str() : "?",
                !np.free_bytes ? "?"
                : np.fits()    ? "yes"
                               : "NO");
  }
}

void print_plan_text(const ClusterPlan& p, const config::ClusterConfig& config,
                     const preflight::PreflightReport& report, const SpeedPlan& speed, const SpeedInputs& inputs,
                     bool what_if, const LayoutChoice& layout, const TransportChoice& transport) {
  if (!p.offline) {
    preflight::print_report(report, std::cout);
    std::cout << "\n";
  }
  const std::string experts = p.hp.n_expert ? ", " + std::to_string(p.hp.n_expert) + " experts" : "";
  std::printf("cluster '%s': model %s (%s, %u layers%s, %s)\n", config.name.c_str(), p.model_path.c_str(),
              p.hp.arch.c_str(), p.hp.n_layer, experts.c_str(), human_bytes(p.model_bytes).c_str());
  std::printf("split %s over %d rank(s), %s; KV cache for %d sequences of %lld tokens\n\n", p.split.text.c_str(),
              p.split.total_ranks, split_basis(config), config.api.parallel, static_cast<long long>(p.context));
  print_rank_table(p, config);
  print_node_table(p, config);
  if (!what_if)
    std::printf("\nshards: %s in %s\n", p.cut.reused ? "already cut" : "cut here by 'up' on first use",
                p.cut.dir.c_str());
  for (size_t n = 0; n < p.nodes.size(); ++n)
    if (!p.nodes[n].fits())
      std::printf("%s is %s short: it needs %s for its shards and KV cache and has %s\n", config.nodes[n].name.c_str(),
                  human_bytes(p.nodes[n].shard_bytes + p.nodes[n].kv_bytes - *p.nodes[n].free_bytes).c_str(),
                  human_bytes(p.nodes[n].shard_bytes + p.nodes[n].kv_bytes).c_str(),
                  human_bytes(*p.nodes[n].free_bytes).c_str());
  if (!p.all_fit())
    std::printf("a node lacks the memory for its shards: lower its weight, add nodes, or lower 'context' in %s\n",
                p.file.c_str());
  print_speed_text(speed, inputs, node_names(config));
  print_layout_text(layout, what_if ? "" : p.file);
  if (p.split.total_ranks > 1) print_transport_text(transport);
  if (!what_if) std::printf("nothing was started: 'clusterctl up %s' does this\n", p.file.c_str());
}

// A cluster that does not exist: --nodes groups named node1..nodeN, each its `memory:`, a share
// of the model in proportion to its bandwidth, one rank each, on the --link.
config::ClusterConfig what_if_cluster(const std::string& model, const std::vector<placement::NodeGroup>& groups,
                                      int parallel, SpeedInputs& in) {
  config::ClusterConfig c;
  c.file = model;
  c.name = "what-if";
  c.model = model;
  c.model_path = model;
  c.api.parallel = parallel;
  for (const auto& g : groups)
    for (int i = 0; i < g.count; ++i) {
      config::NodeConfig n;
      n.name = "node" + std::to_string(c.nodes.size() + 1);
      n.host = n.name + ".what-if";
      n.memory_limit = g.memory_bytes;
      n.weight = g.speed.bandwidth_gbs;
      c.nodes.push_back(n);
      in.nodes.push_back(g.speed);
      in.node_from.push_back(g.compute_given
                                 ? "--nodes"
                                 : "--nodes; compute assumed " + std::to_string(int(placement::kAssumedFlopsPerByte)) +
                                       " flops per byte of bandwidth");
    }
  return c;
}

// "2026-12-05 07:12 UTC"
std::string measured_when(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

// What doctor measured, as the throughput model takes it: the memory's bandwidth from the
// decode stream where the record has one (the plain reads' figure otherwise).
placement::NodeSpeed node_speed(const state::NodeSpeedRecord& r) {
  placement::NodeSpeed n;
  n.bandwidth_gbs =
      placement::decode_bandwidth_gbs(r.stream_gbs, r.stream_flops_per_byte, r.decode_gflops, r.bandwidth_gbs);
  n.compute_gflops = r.compute_gflops;
  n.decode_gflops = r.decode_gflops;
  n.tile8_gflops = r.tile8_gflops;
  for (int i = 0; i < 2; ++i) {
    n.row_parallel_chunks[i] = r.row_parallel_chunks[i], n.row_parallel_slowdown[i] = r.row_parallel_slowdown[i];
    n.row_parallel_decode_slowdown[i] = r.row_parallel_decode_slowdown[i];
  }
  n.one_rank_bandwidth_gbs = placement::decode_bandwidth_gbs(r.one_rank_stream_gbs, r.stream_flops_per_byte,
                                                             r.one_rank_decode_gflops, r.one_rank_bandwidth_gbs);
  n.one_rank_decode_gflops = r.one_rank_decode_gflops;
  n.meeting_s = r.meeting_us * 1e-6;
  n.prompt_meeting_s = r.prompt_meeting_us * 1e-6;
  n.stream_ratio = r.stream_ratios;
  if (r.stream_gbs > 0) n.stream_flops_per_byte = r.stream_flops_per_byte;
  for (int i = 0; i < 2; ++i) {
    n.attention_head_s[i] = r.attention_head_ns[i] * 1e-9;
    n.attention_position_s[i] = r.attention_position_ns[i] * 1e-9;
  }
  n.silu_s = r.silu_ns * 1e-9;
  n.norm_s = r.norm_ns * 1e-9;
  n.threads = r.threads;
  if (r.machine_threads > r.cores && r.cores > 0 && r.threads > 0) {
    n.core_share = placement::core_share(r.machine_threads, r.cores);
    n.threads_beyond_cores = r.machine_threads - r.cores;
    n.cores = r.cores;
    for (int i = 0; i < 2; ++i)
      n.handover_s[i] = r.handover_us[i] >= 0 ? r.handover_us[i] * 1e-6 : placement::kHandoverFallbackS[i];
  }
  return n;
}

// A real cluster: doctor's record of each node; the link from --link, else the cluster file's
// emulated link, else the preset of its link type.
void cluster_inputs(const config::ClusterConfig& c, const std::string& link_flag, SpeedInputs& in) {
  for (const auto& n : c.nodes) {
    const auto r = state::recorded_node_speed(c.name, n.name);
    in.nodes.push_back(r ? node_speed(*r) : placement::NodeSpeed{1, 1});
    const placement::NodeSpeed& speed = in.nodes.back();
    in.node_from.push_back(
        !r ? "not measured"
           : "doctor, " + std::to_string(r->threads) + " threads" +
                 (r->stream_gbs > 0 ? "; memory: its decode stream of " + std::to_string(std::lround(r->stream_gbs)) +
                                          " GB/s of weights less the stream's compute"
                                    : "; memory: plain reads (an older probe: run doctor again)") +
                 (placement::vector_work(speed).measured
                      ? ""
                      : "; attention and element-wise work not measured (an older probe: run doctor again): assumed "
                        "at its matrix-vector rate") +
                 (r->shares_machine_with > 0 ? "; its ranks' share of a machine it shares with " +
                                                   std::to_string(r->shares_machine_with) + " other node(s)"
                                             : "") +
                 (r->machine_threads > r->cores && r->cores > 0
                      ? "; " + std::to_string(r->machine_threads) + " threads take turns on " +
                            std::to_string(r->cores) + " cores: " +
                            std::to_string(std::lround(100 * speed.core_share)) + " % of their machine's rate, " +
                            std::to_string(std::lround(placement::handover_per_sync_s(speed) * 1e6)) +
                            " us a synchronisation handing them over" +
                            (r->handover_us[0] >= 0 ? "" : " (not measured by an older probe: assumed)")
                      : ""));
    if (!r && in.missing.empty())
      in.missing = n.name + " has no measured bandwidth: run 'clusterctl doctor " + c.file +
                   "' (it measures every node and records it for plan)";
  }
  const auto& link = c.nodes.front().link;
  const bool one_node = c.nodes.size() == 1;
  if (c.total_ranks() > 1) {
    // The link under the ranks: --link, else shared memory on one node, else the link type's preset.
    std::optional<placement::LinkSpeed> real;
    std::string real_from;
    if (!link_flag.empty()) {
      real = placement::parse_link(link_flag);
      real_from = "--link";
    } else if (const auto measured = one_node ? std::nullopt : state::recorded_link_speed(c.name)) {
      real = placement::LinkSpeed{"measured by doctor", measured->latency_us, measured->bandwidth_gbs};
      real_from = "doctor, " + measured_when(measured->measured_at) + ": " + measured->method;
    } else if (!one_node) {
      const bool tb = link && link->type == config::LinkType::thunderbolt;
      real = placement::parse_link(tb ? "thunderbolt-bridge" : "10gbe");
      real_from = std::string("preset of the link type ") + (tb ? "thunderbolt" : "ethernet") +
                  " (run 'clusterctl doctor " + c.file + "' to measure it, or give --link LATENCY,BANDWIDTH)";
    }
    if (link && !link->emulate.empty()) {
      // The emulator holds back each all-reduce message (its arrival: the send + the latency, so
      // the transport's own latency hides under it); the step header and the next token's
      // exchange cross the transport beneath unheld.
      const auto s = collectives::parse_link_spec(link->emulate);
      in.link = placement::LinkSpeed{"emulated " + link->emulate, s.latency_s * 1e6,
                                     s.bandwidth_bytes_per_s > 0 ? s.bandwidth_bytes_per_s / 1e9 : 100};
      in.link_from = "the cluster file's emulate:";
      in.step_link = real ? *real : placement::parse_link("shared-memory");
      if (real) in.link_from += "; the step's own messages over " + real->name + " (" + real_from + ")";
    } else if (real) {
      in.link = real;
      in.link_from = real_from;
    }
    // As the ranks decide auto: where the all-reduces cross a link (several nodes, or emulated).
    const std::string overlap = link ? link->overlap_prompt : "";
    in.prompt_overlap = overlap == "on" || (overlap != "off" && (!one_node || (link && !link->emulate.empty())));
    if (link && (!link->allreduce.empty() || !link->wire_format.empty()))
      in.configured = (link->allreduce.empty() ? std::string("one-shot") : link->allreduce) + " " +
                      (link->wire_format.empty() ? std::string("double") : link->wire_format);
  } else if (!link_flag.empty()) {
    throw Error("--link describes the link between ranks, and " + c.file + " has one rank");
  }
}

// What drafting one token costs rank 0: the whole draft model's work per token.
placement::RankWork draft_work(const std::string& path) {
  gguf::GgufFile f(path);
  const model::HParams hp = model::Model::read_hparams(f);
  const model::ShardPlan whole = model::plan_shards(hp, model::SplitUnits::from_model(f, hp), 1);
  return rank_work(f, hp, whole.parts.front(), 0);
}

std::vector<placement::RankWork> plan_work(const ClusterPlan& plan) {
  std::vector<placement::RankWork> work;
  for (const auto& r : plan.ranks) work.push_back(r.work);
  return work;
}

// One layout's plan and prediction, as the layout choice sees them.
LayoutOption layout_option(const ClusterPlan& plan, const SpeedPlan& speed) {
  LayoutOption o;
  o.layout = plan.layout;
  o.allreduces_per_token = speed.model.allreduces_per_pass;
  if (!speed.predictions.empty()) o.best = speed.predictions.front();
  std::vector<double> node_bytes(plan.nodes.size());
  for (const auto& r : speed.model.ranks) node_bytes.at(r.node) += r.dense_bytes + r.expert_bytes * r.expert_fraction;
  for (size_t n = 0; n < plan.nodes.size(); ++n) {
    o.node_bytes_per_token = std::max(o.node_bytes_per_token, node_bytes[n]);
    o.node_kv_bytes = std::max(o.node_kv_bytes, plan.nodes[n].kv_bytes);
  }
  o.fits = plan.all_fit();
  return o;
}

// Both layouts planned and predicted (one on one rank); the plan shown is the one `up` runs.
struct LayoutPlans {
  LayoutChoice choice;
  ClusterPlan plan;
  SpeedPlan speed;
};

LayoutPlans plan_layouts(const config::ClusterConfig& config, const std::string& file,
                         const preflight::PreflightReport& report, bool offline, const SpeedInputs& inputs) {
  const bool several = config.total_ranks() > 1;
  std::vector<LayoutOption> options;
  std::vector<std::pair<ClusterPlan, SpeedPlan>> plans;
  for (model::Layout l : {model::Layout::split_attention, model::Layout::replicated_attention}) {
    if (!several && l == model::Layout::replicated_attention) break;
    try {
      ClusterPlan p = make_plan(config, file, report, offline, l);
      SpeedPlan sp = plan_speed(plan_work(p), p.hp, inputs, l);
      options.push_back(layout_option(p, sp));
      plans.emplace_back(std::move(p), std::move(sp));
    } catch (const Error&) {
      // A model whose heads cannot be cut over these ranks can still replicate them; the other
      // layout's error is the one shown when neither can be made.
      if (l == model::Layout::replicated_attention || config.layout.empty() || config.layout == "split-attention" ||
          !several)
        throw;
      LayoutOption none;
      none.fits = false;
      options.push_back(none);
      plans.emplace_back();
    }
  }
  LayoutPlans out;
  out.choice = choose_layout(std::move(options), config.layout, inputs.missing);
  auto& chosen = plans[out.choice.runs == model::Layout::replicated_attention && plans.size() > 1 ? 1 : 0];
  if (chosen.first.model_path.empty()) chosen = plans.back();  // the split could not be cut
  out.plan = std::move(chosen.first);
  out.speed = std::move(chosen.second);
  return out;
}

}  // namespace

namespace {

model::Layout recommended_layout(const config::ClusterConfig& config, std::string& reason) {
  try {
    if (config.weights_by_memory()) {
      reason = "a node's weight is 'by memory', which only the preflight knows; split attention stays";
      return model::Layout::split_attention;
    }
    SpeedInputs inputs;
    cluster_inputs(config, "", inputs);
    inputs.streams = config.api.parallel;
    const auto plans = plan_layouts(config, config.file, {}, true, inputs);
    reason = plans.choice.reason;
    return plans.choice.recommended;
  } catch (const std::exception& e) {
    reason = std::string("it could not be predicted (") + e.what() + "); split attention stays";
    return model::Layout::split_attention;
  }
}

}  // namespace

void resolve_auto_layout(config::ClusterConfig& config, std::FILE* out) {
  if (config.layout != "auto") return;
  std::string why;
  config.layout = model::layout_name(recommended_layout(config, why));
  std::fprintf(out, "layout: auto -> %s: %s\n", config.layout.c_str(), why.c_str());
}

int plan_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("file", po::value<std::string>()->required(), "cluster file (YAML), or with --what-if a model")(
      "json", po::bool_switch(), "print the plan as JSON")(
      "offline", po::bool_switch(), "skip the nodes' checks over SSH (needs explicit weights, not 'by memory')")(
      "what-if", po::bool_switch(), "plan nodes and a link that do not exist: --nodes, --link and a MODEL file")(
      "nodes", po::value<std::string>()->default_value(""), "with --what-if: COUNTxMEMORY@BANDWIDTH[@COMPUTE][+...]")(
      "link", po::value<std::string>()->default_value(""),
      "the link between nodes: thunderbolt-bridge, 10gbe, 1gbe, veth or LATENCY,BANDWIDTH (300us,10gbit)")(
      "parallel", po::value<int>()->default_value(0), "streams decoded together (default: api.parallel, or 4)")(
      "prefill-batch", po::value<int>()->default_value(512), "tokens of a prompt batch for the prefill figure")(
      "draft", po::value<std::string>()->default_value(""),
      "speculative decoding: ngram or DRAFT.gguf (default: api.draft)")(
      "draft-acceptance", po::value<double>(),
      "the share of drafted tokens kept (0..1), as 'clusterctl bench MODEL --draft D' or /metrics measured it")(
      "draft-max", po::value<int>()->default_value(0), "most tokens drafted a round (default: api.draft_max, or 8)")(
      "tokens", po::value<int64_t>()->default_value(kGenerateTokens),
      "with a draft: the run's length in tokens, whose first rounds draft less while k settles (as bench -n)");
  po::positional_options_description pos;
  pos.add("file", 1);
  auto vm = parse_options(argc, argv,
                          "clusterctl plan CLUSTER.yaml [--json] [--offline] [--link L]\n"
                          "clusterctl plan --what-if --nodes 4x192GB@800GB/s --link thunderbolt-bridge MODEL.gguf\n\n"
                          "Shows what 'up' would do, and starts nothing: the preflight of every node (as\n"
                          "'doctor'), the split of the model over the ranks, each rank's attention heads, FFN\n"
                          "columns and vocabulary rows with the size of its shard, each node's shards and KV\n"
                          "cache against its free memory, whether the cut is already in this machine's cache,\n"
                          "and the predicted decode and prefill tokens/s of each all-reduce and wire format\n"
                          "with what limits each (from the nodes' speeds 'doctor' measured and the link).\n"
                          "Exits 1 when a check fails or a node lacks the memory.",
                          opts, pos);
  if (!vm) return 0;
  const std::string file = (*vm)["file"].as<std::string>();
  const bool json = (*vm)["json"].as<bool>(), what_if = (*vm)["what-if"].as<bool>();
  const bool offline = (*vm)["offline"].as<bool>() || what_if;
  const std::string nodes_flag = (*vm)["nodes"].as<std::string>(), link_flag = (*vm)["link"].as<std::string>();
  const int parallel_flag = (*vm)["parallel"].as<int>();
  const int prefill_batch = (*vm)["prefill-batch"].as<int>(), draft_max_flag = (*vm)["draft-max"].as<int>();
  if (prefill_batch < 1 || prefill_batch > 65536) throw Error("--prefill-batch must be 1 to 65536 tokens");
  if (draft_max_flag < 0 || draft_max_flag > 64) throw Error("--draft-max must be 1 to 64 (0: the cluster's, or 8)");
  const int64_t run_tokens = (*vm)["tokens"].as<int64_t>();
  if (run_tokens < 2 || run_tokens > 1000000)
    throw Error("--tokens must be 2 to 1000000: the tokens of the run whose speed plan predicts (bench -n)");
  std::optional<double> kept_share;
  if (vm->count("draft-acceptance")) {
    kept_share = (*vm)["draft-acceptance"].as<double>();
    if (!(*kept_share >= 0 && *kept_share <= 1))
      throw Error("--draft-acceptance is the share of drafted tokens kept, 0 to 1 (e.g. 0.8 for 80 %)");
  }
  if (parallel_flag < 0 || parallel_flag > 1024) throw Error("--parallel must be 1 to 1024 (0: the cluster's)");
  if (!what_if && !nodes_flag.empty())
    throw Error("--nodes describes nodes that do not exist: add --what-if and give a model file instead of " + file);
  SpeedInputs inputs;
  config::ClusterConfig config;
  if (what_if) {
    if (nodes_flag.empty()) throw Error("--what-if needs --nodes, e.g. --nodes 4x192GB@800GB/s");
    if (file.ends_with(".yaml") || file.ends_with(".yml"))
      throw Error(
          "--what-if plans a model on nodes that do not exist: give a model file (e.g. from 'clusterctl model "
          "synth --sparse --shape llama3-70b'), not the cluster file " +
          file);
    const auto groups = placement::parse_nodes(nodes_flag);
    int total = 0;
    for (const auto& g : groups) total += g.count;
    if (total > 1 && link_flag.empty())
      throw Error("--what-if with " + std::to_string(total) +
                  " nodes needs --link (thunderbolt-bridge, 10gbe, 1gbe, "
                  "veth, or LATENCY,BANDWIDTH such as 300us,10gbit)");
    if (!link_flag.empty()) {
      inputs.link = placement::parse_link(link_flag);
      inputs.link_from = "--link";
    }
    config = what_if_cluster(file, groups, parallel_flag > 0 ? parallel_flag : 4, inputs);
  } else {
    config = config::load_cluster_config(file);
    use_hub_model(config, false, stderr);
    if (parallel_flag > 0) config.api.parallel = parallel_flag;
  }
  if (!config.model_hub.empty() && config.model_path.empty())
    throw Error(config.model_hub + " (the model of " + file + ") is a model on Hugging Face that is not pulled yet: " +
                "pull it with `clusterctl pull " + config.model_hub + "` (or let `up` pull it), then plan");
  if (offline && config.weights_by_memory())
    throw Error(file + ": a node's weight is 'by memory', which needs the nodes' free memory: run 'clusterctl plan " +
                file + "' without --offline, or give every node a number as its weight");

  preflight::PreflightReport report;
  if (!offline)
    report = launch::run_preflight_interruptible(config, kVersion, "plan",
                                                 "nothing was planned (run 'clusterctl plan " + file + "' again)");
  if (!what_if) cluster_inputs(config, link_flag, inputs);
  inputs.streams = config.api.parallel;
  inputs.prefill_batch = prefill_batch;
  inputs.draft = !(*vm)["draft"].as<std::string>().empty() ? (*vm)["draft"].as<std::string>() : config.api.draft;
  inputs.draft_max = draft_max_flag > 0 ? draft_max_flag : config.api.draft_max > 0 ? config.api.draft_max : 8;
  if (kept_share && inputs.draft.empty())
    throw Error("--draft-acceptance needs a draft: --draft ngram|DRAFT.gguf, or api.draft in the cluster file");
  if (kept_share) inputs.draft_kept_share = *kept_share;
  inputs.draft_tokens = run_tokens;
  if (!inputs.draft.empty() && inputs.draft != "ngram") inputs.draft_work = draft_work(inputs.draft);
  const LayoutPlans layouts = plan_layouts(config, file, report, offline, inputs);
  const ClusterPlan& plan = layouts.plan;
  const SpeedPlan& speed = layouts.speed;
  const bool ok = (offline || report.ok()) && plan.all_fit();
  // The transport under plan's fastest algorithm (or the one the cluster file names).
  const auto& link = config.nodes.front().link;
  std::string algorithm = link && !link->allreduce.empty() && link->allreduce != "auto" ? link->allreduce : "";
  if (algorithm.empty() && !speed.predictions.empty())
    algorithm = placement::algorithm_name(speed.predictions.front().algorithm);
  const TransportChoice transport = choose_transport(config, size_t(plan.hp.n_embd) * sizeof(double), algorithm);
  if (json)
    print_plan_json(plan, config, report, ok, speed, inputs, layouts.choice, transport);
  else
    print_plan_text(plan, config, report, speed, inputs, what_if, layouts.choice, transport);
  return ok ? 0 : 1;
}

}  // namespace clusterctl::cli
