// `clusterctl up CLUSTER.yaml`: start the cluster's serving job and return when it answers.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "clusterctl/version.h"
#include "controller/cli/model_arg.h"
#include "controller/cli/plan_layout.h"
#include "controller/cli/plan_transport.h"
#include "controller/config/cluster_config.h"
#include "controller/launch/cluster_up.h"
#include "controller/launch/http_probe.h"
#include "controller/launch/step_error.h"
#include "controller/launch/stop_job.h"
#include "controller/launch/supervisor.h"
#include "controller/state/cluster_state.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {
namespace {

// A cluster recorded as up: is rank 0 answering?
bool answering(const state::ClusterState& s) {
  std::string token;
  try {
    token = launch::read_token(s.token_file);
  } catch (const Error&) {
  }
  auto r = launch::http_get(s.endpoint, "/health", std::chrono::seconds(3), token);
  return r && r->status == 200;
}

}  // namespace

int up_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("file", po::value<std::string>()->required(), "cluster file (YAML)")(
      "timeout", po::value<int>()->default_value(120), "seconds to wait for every rank to load and /health to answer")(
      "json", po::bool_switch(), "print the recorded state (endpoint, nodes, ...) as JSON at the end");
  po::positional_options_description pos;
  pos.add("file", 1);
  auto vm = parse_options(argc, argv,
                          "clusterctl up CLUSTER.yaml [--timeout S] [--json]\n\n"
                          "Starts the cluster: preflight checks on every node, the split of the model, one shard\n"
                          "per rank cut here and copied to its node (skipped when the node has it), mpirun with\n"
                          "clusterctl-worker --serve on the first node, then waits until the API answers /health.\n"
                          "Prints the endpoint and records the cluster for 'status', 'logs', 'down' and 'run'.\n"
                          "All or nothing: when a step fails, nothing is left running on any node.\n"
                          "When the cluster is already up, says so and changes nothing.",
                          opts, pos);
  if (!vm) return 0;
  const std::string file = (*vm)["file"].as<std::string>();
  const int timeout = (*vm)["timeout"].as<int>();
  if (timeout < 1) throw Error("--timeout must be at least 1 second");
  const bool json = (*vm)["json"].as<bool>();
  auto config = config::load_cluster_config(file);
  std::FILE* out = json ? stderr : stdout;

  if (auto running = state::load(config.name)) {
    if (answering(*running)) {
      const long up_s = long(std::time(nullptr) - running->started_at);
      std::fprintf(out,
                   "cluster '%s' is already running (%s, up %ld s, %d rank(s) on %zu node(s)); nothing changed.\n"
                   "'clusterctl status %s' shows it, 'clusterctl down %s' stops it.\n",
                   config.name.c_str(), running->endpoint.c_str(), up_s, running->total_ranks(), running->nodes.size(),
                   config.name.c_str(), config.name.c_str());
      if (json) std::cout << state::to_json(*running) << "\n";
      return 0;
    }
    // Recorded but not answering: a crashed or half-stopped job. Clear it away, then start anew.
    std::fprintf(out, "cluster '%s' is recorded as up (%s) but does not answer; stopping what is left of it first\n",
                 config.name.c_str(), running->endpoint.c_str());
    launch::stop_supervisor(*running, std::chrono::seconds(60));
    if (auto now = state::load(config.name)) running = now;
    std::vector<std::unique_ptr<preflight::NodeShell>> shells;
    const auto job = launch::job_record(*running);
    try {
      auto report = launch::stop_job_everywhere(launch::config_for_state(config, *running), shells, job);
      if (!report.clean()) std::fprintf(out, "warning: %s\n", report.describe().c_str());
    } catch (const Error& e) {
      std::fprintf(out, "warning: %s\n", e.what());
    }
    state::remove(config.name);
  }

  // A model named on Hugging Face is pulled here, once; the nodes get their shards cut from it.
  use_hub_model(config, true, out);

  resolve_auto_layout(config, out);
  resolve_auto_transport(config, out);
  launch::UpOptions options;
  options.health_timeout = std::chrono::seconds(timeout);
  options.controller_version = kVersion;
  options.out = out;
  try {
    auto s = launch::bring_up(config, file, options);
    std::fprintf(out, "cluster '%s' is up: %s (model '%s', %d rank(s) on %zu node(s))\n", s.cluster.c_str(),
                 s.endpoint.c_str(), s.model_id.c_str(), s.total_ranks(), s.nodes.size());
    if (config.restart_on_failure) {
      s.supervisor_pid = launch::start_supervisor(s.cluster);
      state::save(s);
      std::fprintf(out, "restart: on-failure: supervisor pid %lld restarts it over the nodes that remain (log %s/%s)\n",
                   static_cast<long long>(s.supervisor_pid), state::state_dir().c_str(),
                   (s.cluster + ".supervisor.log").c_str());
    }
    if (json)
      std::cout << state::to_json(s) << "\n";
    else
      std::printf("%s\n", s.endpoint.c_str());
    return 0;
  } catch (const launch::StepError& e) {
    std::fflush(out);
    std::fprintf(stderr, "error: up failed at node %s, step %s: %s\n  fix: %s\n", e.node().c_str(), e.step().c_str(),
                 e.cause().c_str(), e.fix().c_str());
    return 1;
  }
}

}  // namespace clusterctl::cli
