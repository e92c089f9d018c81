// `clusterctl doctor CLUSTER.yaml [--json] [--no-speed | --memory-only]`: the preflight checks of
// `up`, alone, as a table; then each node's memory bandwidth and compute, measured by its worker
// (`clusterctl-worker --probe-speed`, one node at a time so they do not share a machine's memory
// bus in a test cluster) and recorded for `plan`'s predictions. --memory-only: the decode stream
// alone (the figure that moves with a machine's memory state), printed and not recorded.
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "clusterctl/version.h"
#include "controller/cli/doctor_link.h"
#include "controller/cli/link_bench_job.h"
#include "controller/cli/model_arg.h"
#include "controller/config/cluster_config.h"
#include "controller/launch/interrupt.h"
#include "controller/launch/local_worker.h"
#include "controller/launch/machine_probe.h"
#include "controller/preflight/node_shell.h"
#include "controller/preflight/preflight.h"
#include "controller/preflight/report.h"
#include "controller/state/node_speeds.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {
namespace {

struct SpeedProbe {
  std::string node;
  std::optional<state::NodeSpeedRecord> speed;
  std::string error;
};

std::string fixed1(double v, const char* unit) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f%s", v, unit);
  return buf;
}

// The node's worker's --probe-speed answer for `ranks` ranks of the node's threads (`stream_only`:
// the decode stream's figures alone).
nlohmann::json run_probe(const config::ClusterConfig& c, const config::NodeConfig& n, int ranks, bool stream_only) {
  const std::string worker = launch::node_worker_path(n);
  auto shell = preflight::open_node_shell(c, n);
  const std::string command = preflight::kNodePath + preflight::shell_path(worker) + " --probe-speed --threads " +
                              std::to_string(n.threads) + " --ranks " + std::to_string(ranks) +
                              (stream_only ? " --stream-only" : "");
  ssh::ExecResult r;
  try {
    r = shell->run(command, std::chrono::seconds(180), &launch::interrupt_signal());
  } catch (const ssh::SshError& e) {
    if (e.kind() != ssh::SshFailure::interrupted) throw;
    throw launch::Interrupted(launch::interrupt_signal(),
                              e.fix().starts_with("stopped")
                                  ? "the probe was stopped on " + n.name
                                  : "the probe could not be stopped on " + n.name + " and may still run there");
  }
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (r.status != 0 || !j.is_object() || !j.contains("stream_gb_s"))
    throw Error(worker + " --probe-speed failed (exit " + std::to_string(r.status) + "): " + r.out.substr(0, 200));
  return j;
}

// As the node's ranks will read: its ranks' pools of `threads` each at once (0: every core).
// `machine`: the ranks of every node on its machine, probed together, and its cores; the node
// records its own ranks' share of what they reach. Where their threads outnumber the cores, as
// many ranks as fill the cores are probed, and plan shares the cores among the ranks in time
// (placement::core_share): probed at once, their turns came in whatever order the scheduler
// gave them a core, and a probe measured anything between the two.
// `machine_probe`: the probe's answer for this machine when another node of it was probed already.
// `memory_only`: the decode stream's figures alone, which doctor_main does not record (a record
// lacking the others would leave plan without them).
SpeedProbe probe_node(const config::ClusterConfig& c, const config::NodeConfig& n, const launch::MachineLoad& machine,
                      nlohmann::json& machine_probe, bool memory_only) {
  SpeedProbe p{n.name, std::nullopt, ""};
  try {
    const int ranks_on_machine = machine.ranks, threads = n.threads > 0 ? n.threads : machine.cores;
    const int machine_threads = ranks_on_machine * threads;
    const int probed_ranks = machine_threads > machine.cores ? std::max(1, machine.cores / threads) : ranks_on_machine;
    if (!machine_probe.is_object()) machine_probe = run_probe(c, n, probed_ranks, memory_only);
    const nlohmann::json& j = machine_probe;
    state::NodeSpeedRecord s;
    if (probed_ranks < ranks_on_machine) s.cores = machine.cores, s.machine_threads = machine_threads;
    const double share = static_cast<double>(n.ranks) / ranks_on_machine;
    s.bandwidth_gbs = share * j.value("bandwidth_gb_s", 0.0);
    s.compute_gflops = share * j.value("compute_gflops", 0.0);
    s.decode_gflops = share * j.value("decode_gflops", 0.0);
    s.tile8_gflops = share * j.value("tile8_gflops", 0.0);
    if (j.contains("row_parallel")) state::read_row_parallel(j["row_parallel"], s);     // a ratio: not shared
    if (j.contains("stream_ratios")) state::read_stream_ratios(j["stream_ratios"], s);  // ratios too
    s.stream_gbs = share * j.value("stream_gb_s", 0.0);
    s.stream_flops_per_byte = j.value("stream_flops_per_byte", 0.0);
    s.shares_machine_with = machine.nodes - 1;
    s.meeting_us = j.value("meeting_us", 0.0);  // one rank's pool: not shared among ranks
    s.prompt_meeting_us = j.value("prompt_meeting_us", 0.0);
    // One thread's rates (each rank's pool runs its own): not shared among ranks either.
    for (size_t i = 0; i < 2; ++i) {
      if (j.contains("attention_head_ns") && j["attention_head_ns"].size() == 2)
        s.attention_head_ns[i] = j["attention_head_ns"][i].get<double>();
      if (j.contains("attention_position_ns") && j["attention_position_ns"].size() == 2)
        s.attention_position_ns[i] = j["attention_position_ns"][i].get<double>();
    }
    s.silu_ns = j.value("silu_ns", 0.0);
    s.norm_ns = j.value("norm_ns", 0.0);
    // The machine's: not shared among ranks.
    if (j.contains("handover_us") && j["handover_us"].size() == 2)
      for (size_t i = 0; i < 2; ++i) s.handover_us[i] = j["handover_us"][i].get<double>();
    if (j.contains("one_rank") && j["one_rank"].is_object()) {
      s.one_rank_bandwidth_gbs = j["one_rank"].value("bandwidth_gb_s", 0.0);
      s.one_rank_decode_gflops = j["one_rank"].value("decode_gflops", 0.0);
      s.one_rank_stream_gbs = j["one_rank"].value("stream_gb_s", 0.0);
    }
    s.threads = j["threads"].get<int>();
    s.method = j.value("method", "");
    if (s.machine_threads > 0)
      s.method += "; the machine's " + std::to_string(ranks_on_machine) + " ranks of " + std::to_string(threads) +
                  " threads outnumber its " + std::to_string(machine.cores) + " cores: probed as " +
                  std::to_string(probed_ranks) + " rank(s), each node its ranks' share";
    s.measured_at = static_cast<int64_t>(std::time(nullptr));
    p.speed = s;
  } catch (const launch::Interrupted&) {
    throw;  // doctor ends with it
  } catch (const std::exception& e) {
    p.error = e.what();
  }
  return p;
}

}  // namespace

int doctor_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("file", po::value<std::string>()->required(), "cluster file (YAML)")(
      "json", po::bool_switch(), "print the checks as JSON")("no-speed", po::bool_switch(),
                                                             "skip measuring each node's memory bandwidth and compute")(
      "memory-only", po::bool_switch(),
      "measure each node's decode stream alone (about a second a machine), print it, record nothing");
  po::positional_options_description pos;
  pos.add("file", 1);
  auto vm = parse_options(argc, argv,
                          "clusterctl doctor CLUSTER.yaml [--json] [--no-speed | --memory-only]\n\n"
                          "Connects to every node and checks OS/arch, the worker and its version, free memory\n"
                          "against the node's share of the model, the link interface, node-to-node reachability\n"
                          "on the link, and mpirun. Then measures each node's memory bandwidth and compute\n"
                          "(its worker's --probe-speed, a few seconds a node) and, for several nodes, the\n"
                          "link's latency and bandwidth (all-reduces over the cluster's ranks under mpirun),\n"
                          "and records them for 'plan', when every check passed. --memory-only: each node's\n"
                          "decode stream alone (its ranks together, and one rank alone), not recorded: to see\n"
                          "whether a machine's memory changed state since the full probe.\n"
                          "Exits 1 when any check fails.",
                          opts, pos);
  if (!vm) return 0;
  const bool memory_only = (*vm)["memory-only"].as<bool>();
  if (memory_only && (*vm)["no-speed"].as<bool>())
    throw Error("--memory-only measures a speed and --no-speed skips them: give one of the two");
  auto config = config::load_cluster_config((*vm)["file"].as<std::string>());
  use_hub_model(config, false, stderr);
  const std::string again = "(run 'clusterctl doctor " + (*vm)["file"].as<std::string>() + "' again)";
  // SIGINT and SIGTERM stop what runs on the nodes, the checks or a probe, before doctor ends.
  launch::InterruptGuard interrupt_guard;
  auto report = launch::run_preflight_interruptible(config, kVersion, "doctor", "nothing was recorded " + again);
  std::vector<SpeedProbe> speeds;
  std::optional<LinkProbe> link;
  // Speeds only of a cluster that passes its checks: a failing one is fixed first, and its
  // probes would fail on the same cause.
  if (!(*vm)["no-speed"].as<bool>() && report.ok()) {
    const auto machines = probe_machines(config);
    const auto load = launch::machine_loads(config.nodes, machines);
    std::map<std::string, nlohmann::json> probed;  // by machine: one probe of all its ranks
    for (size_t i = 0; i < config.nodes.size(); ++i) {
      const std::string key = launch::machine_key(machines[i], config.nodes[i]);
      try {
        speeds.push_back(probe_node(config, config.nodes[i], load.at(key), probed[key], memory_only));
      } catch (const launch::Interrupted& e) {
        throw launch::Interrupted(e.signal(), "doctor: interrupted by " + launch::signal_name(e.signal()) + " during " +
                                                  config.nodes[i].name + "'s speed probe; " + e.what() +
                                                  "; no node's speed was recorded " + again);
      }
    }
    // Recorded together: an interrupted probe leaves the nodes' speeds as they were.
    for (const auto& s : speeds)
      if (s.speed && !memory_only) state::record_node_speed(config.name, s.node, *s.speed);
    // The link under the ranks of several nodes, as the job's all-reduces cross it.
    if (config.nodes.size() > 1 && !memory_only) try {
        link = probe_link(config, report, machines);
      } catch (const launch::Interrupted& e) {
        throw launch::Interrupted(e.signal(), "doctor: interrupted by " + launch::signal_name(e.signal()) +
                                                  " during the link probe; " + e.what() +
                                                  "; the link's speed was not recorded " + again);
      }
  }
  if ((*vm)["json"].as<bool>()) {
    auto j = preflight::report_json(config, report);
    for (const auto& s : speeds) {
      if (!s.speed) {
        j["speed"].push_back({{"node", s.node}, {"error", s.error}});
        continue;
      }
      nlohmann::json e{{"node", s.node},
                       {"stream_gb_s", s.speed->stream_gbs},
                       {"one_rank_stream_gb_s", s.speed->one_rank_stream_gbs},
                       {"shares_machine_with", s.speed->shares_machine_with},
                       {"threads", s.speed->threads},
                       {"method", s.speed->method},
                       {"recorded", !memory_only}};
      if (!memory_only)
        e.update({{"bandwidth_gb_s", s.speed->bandwidth_gbs},
                  {"compute_gflops", s.speed->compute_gflops},
                  {"decode_gflops", s.speed->decode_gflops},
                  {"tile8_gflops", s.speed->tile8_gflops},
                  {"row_parallel",
                   {{"chunks", s.speed->row_parallel_chunks},
                    {"slowdown", s.speed->row_parallel_slowdown},
                    {"decode_slowdown", s.speed->row_parallel_decode_slowdown}}},
                  {"meeting_us", s.speed->meeting_us},
                  {"prompt_meeting_us", s.speed->prompt_meeting_us},
                  {"attention_head_ns", s.speed->attention_head_ns},
                  {"attention_position_ns", s.speed->attention_position_ns},
                  {"silu_ns", s.speed->silu_ns},
                  {"norm_ns", s.speed->norm_ns},
                  {"handover_us", s.speed->handover_us},
                  {"stream_ratios", s.speed->stream_ratios}});
      j["speed"].push_back(e);
    }
    if (link)
      j["link_speed"] = link->link ? nlohmann::json{{"latency_us", link->link->latency_us},
                                                    {"bandwidth_gb_s", link->link->bandwidth_gbs},
                                                    {"ranks", link->link->ranks},
                                                    {"method", link->link->method}}
                                   : nlohmann::json{{"error", link->error}};
    std::cout << j.dump(2) << "\n";
  } else {
    preflight::print_report(report, std::cout);
    if (!speeds.empty() && memory_only)
      std::printf("\n%-14s %-14s %-14s %s\n", "NODE", "DECODE STREAM", "ONE RANK'S", "THREADS");
    else if (!speeds.empty())
      std::printf("\n%-14s %-14s %-14s %-14s %s\n", "NODE", "READS", "DECODE STREAM", "COMPUTE", "THREADS");
    for (const auto& s : speeds)
      if (s.speed && memory_only)
        std::printf("%-14s %-14s %-14s %d\n", s.node.c_str(), fixed1(s.speed->stream_gbs, " GB/s").c_str(),
                    fixed1(s.speed->one_rank_stream_gbs, " GB/s").c_str(), s.speed->threads);
      else if (s.speed)
        std::printf("%-14s %-14s %-14s %-14s %d\n", s.node.c_str(), fixed1(s.speed->bandwidth_gbs, " GB/s").c_str(),
                    fixed1(s.speed->stream_gbs, " GB/s").c_str(), fixed1(s.speed->compute_gflops, " GFLOPS").c_str(),
                    s.speed->threads);
      else
        std::printf("%-14s not measured: %s\n", s.node.c_str(), s.error.c_str());
    for (const auto& s : speeds)
      if (s.speed && s.speed->shares_machine_with > 0) {
        std::printf(
            "%s shares its machine (boot id) with %d other node(s) of the cluster: their ranks were probed "
            "together and each node has its ranks' share\n",
            s.node.c_str(), s.speed->shares_machine_with);
        break;
      }
    if (!speeds.empty() && speeds.front().speed && memory_only)
      std::printf("measured: %s; not recorded ('plan' takes the full probe's record: 'clusterctl doctor %s')\n",
                  speeds.front().speed->method.c_str(), (*vm)["file"].as<std::string>().c_str());
    else if (!speeds.empty() && speeds.front().speed)
      std::printf("measured: %s; recorded in %s for 'plan'\n", speeds.front().speed->method.c_str(),
                  state::node_speeds_path().c_str());
    if (link && link->link)
      std::printf("link: %.1f us, %.2f GB/s (%s); recorded for 'plan'\n", link->link->latency_us,
                  link->link->bandwidth_gbs, link->link->method.c_str());
    else if (link)
      std::printf("link not measured ('plan' takes the link type's preset, or --link): %s\n", link->error.c_str());
  }
  return report.ok() ? 0 : 1;
}

}  // namespace clusterctl::cli
