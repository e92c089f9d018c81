// `clusterctl doctor CLUSTER.yaml [--json] [--no-speed]`: the preflight checks of `up`, alone, as
// a table; then each node's memory bandwidth and compute, measured by its worker
// (`clusterctl-worker --probe-speed`, one node at a time so they do not share a machine's memory
// bus in a test cluster) and recorded for `plan`'s predictions.
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "clusterctl/version.h"
#include "controller/cli/model_arg.h"
#include "controller/config/cluster_config.h"
#include "controller/launch/local_worker.h"
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

// As the node's ranks will read: its ranks' pools of `threads` each at once (0: every core).
SpeedProbe probe_node(const config::ClusterConfig& c, const config::NodeConfig& n) {
  SpeedProbe p{n.name, std::nullopt, ""};
  try {
    const std::string worker = n.is_local() && n.worker == "clusterctl-worker" ? launch::local_worker_path() : n.worker;
    const std::string path =
        worker.starts_with("~/") ? "\"$HOME\"/" + ssh::shell_quote(worker.substr(2)) : ssh::shell_quote(worker);
    auto shell = preflight::open_node_shell(c, n);
    const auto r =
        shell->run("PATH=\"$PATH:/usr/local/bin:/opt/homebrew/bin\"; export PATH; " + path +
                       " --probe-speed --threads " + std::to_string(n.threads) + " --ranks " + std::to_string(n.ranks),
                   std::chrono::seconds(180));
    const auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (r.status != 0 || !j.is_object() || !j.contains("bandwidth_gb_s"))
      throw Error(worker + " --probe-speed failed (exit " + std::to_string(r.status) + "): " + r.out.substr(0, 200));
    state::NodeSpeedRecord s;
    s.bandwidth_gbs = j["bandwidth_gb_s"].get<double>();
    s.compute_gflops = j["compute_gflops"].get<double>();
    s.threads = j["threads"].get<int>();
    s.method = j.value("method", "");
    s.measured_at = static_cast<int64_t>(std::time(nullptr));
    state::record_node_speed(c.name, n.name, s);
    p.speed = s;
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
                                                             "skip measuring each node's memory bandwidth and compute");
  po::positional_options_description pos;
  pos.add("file", 1);
  auto vm = parse_options(argc, argv,
                          "clusterctl doctor CLUSTER.yaml [--json] [--no-speed]\n\n"
                          "Connects to every node and checks OS/arch, the worker and its version, free memory\n"
                          "against the node's share of the model, the link interface, node-to-node reachability\n"
                          "on the link, and mpirun. Then measures each node's memory bandwidth and compute\n"
                          "(its worker's --probe-speed, a few seconds a node) and records them for 'plan',\n"
                          "when every check passed.\n"
                          "Exits 1 when any check fails.",
                          opts, pos);
  if (!vm) return 0;
  auto config = config::load_cluster_config((*vm)["file"].as<std::string>());
  use_hub_model(config, false, stderr);
  auto report = preflight::run_preflight(config, {kVersion});
  std::vector<SpeedProbe> speeds;
  // Speeds only of a cluster that passes its checks: a failing one is fixed first, and its
  // probes would fail on the same cause.
  if (!(*vm)["no-speed"].as<bool>() && report.ok())
    for (const auto& n : config.nodes) speeds.push_back(probe_node(config, n));
  if ((*vm)["json"].as<bool>()) {
    auto j = preflight::report_json(config, report);
    for (const auto& s : speeds)
      j["speed"].push_back(s.speed ? nlohmann::json{{"node", s.node},
                                                    {"bandwidth_gb_s", s.speed->bandwidth_gbs},
                                                    {"compute_gflops", s.speed->compute_gflops},
                                                    {"threads", s.speed->threads},
                                                    {"method", s.speed->method}}
                                   : nlohmann::json{{"node", s.node}, {"error", s.error}});
    std::cout << j.dump(2) << "\n";
  } else {
    preflight::print_report(report, std::cout);
    if (!speeds.empty()) std::printf("\n%-14s %-14s %-14s %s\n", "NODE", "BANDWIDTH", "COMPUTE", "THREADS");
    for (const auto& s : speeds)
      if (s.speed)
        std::printf("%-14s %-14s %-14s %d\n", s.node.c_str(), fixed1(s.speed->bandwidth_gbs, " GB/s").c_str(),
                    fixed1(s.speed->compute_gflops, " GFLOPS").c_str(), s.speed->threads);
      else
        std::printf("%-14s not measured: %s\n", s.node.c_str(), s.error.c_str());
    if (!speeds.empty() && speeds.front().speed)
      std::printf("measured: %s; recorded in %s for 'plan'\n", speeds.front().speed->method.c_str(),
                  state::node_speeds_path().c_str());
  }
  return report.ok() ? 0 : 1;
}

}  // namespace clusterctl::cli
