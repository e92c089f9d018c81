// `clusterctl down [CLUSTER]`: stop the cluster's job on every node and forget it.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "controller/cli/cluster_arg.h"
#include "controller/config/cluster_config.h"
#include "controller/launch/stop_job.h"
#include "controller/launch/supervisor.h"
#include "controller/state/cluster_state.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {

int down_main(int argc, char** argv) {
  auto args = parse_cluster_verb(argc, argv,
                                 "clusterctl down [CLUSTER.yaml | NAME] [--json]\n\n"
                                 "Stops the cluster's job: mpirun's process group on the head node (which ends the\n"
                                 "workers and orteds everywhere), then checks every node over ssh and ends any\n"
                                 "clusterctl-worker, orted or mpirun of this job that is left. Forgets the cluster\n"
                                 "once no process of it remains. Shards stay cached on the nodes for the next 'up'.",
                                 "print the outcome as JSON");
  if (!args) return 0;
  const bool json = args->json;
  const std::string& name = args->name;
  auto& s = args->state;
  if (!s) {
    if (json)
      std::cout << nlohmann::json{{"cluster", name}, {"was_up", false}, {"clean", true}}.dump(2) << "\n";
    else
      std::printf("%s\n", name.empty() ? "no cluster is up" : ("cluster '" + name + "' is not up").c_str());
    return 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  // The supervisor first (`restart: on-failure`), or it would restart what is stopped here; it may
  // have restarted the job on fewer nodes, so the state is read again after it ended.
  if (launch::stop_supervisor(*s, std::chrono::seconds(60))) {
    if (!json) std::printf("stopped the supervisor (pid %lld)\n", static_cast<long long>(s->supervisor_pid));
    auto now = state::load(s->cluster);
    if (!now) return 0;
    s = now;
  }
  config::ClusterConfig config;
  try {
    config = config::load_cluster_config(s->config_path);
  } catch (const Error& e) {
    throw Error("cluster '" + s->cluster + "' was started from " + s->config_path + ", which cannot be read now (" +
                e.what() + "); restore that file (its ssh settings reach the nodes) and run 'clusterctl down' again");
  }
  config = launch::config_for_state(config, *s);  // a restarted cluster may run on fewer nodes
  if (!json)
    std::printf("stopping cluster '%s' (mpirun pid %lld on %s)\n", s->cluster.c_str(),
                static_cast<long long>(s->mpirun_pid), s->head_node.c_str());
  std::vector<std::unique_ptr<preflight::NodeShell>> shells;
  auto report = launch::stop_job_everywhere(config, shells, launch::job_record(*s));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (report.clean()) state::remove(s->cluster);
  if (json) {
    std::cout << nlohmann::json{{"cluster", s->cluster},
                                {"was_up", true},
                                {"clean", report.clean()},
                                {"remaining", report.remaining},
                                {"unreachable", report.unreachable},
                                {"seconds", secs}}
                     .dump(2)
              << "\n";
  } else if (report.clean()) {
    std::string nodes;
    for (const auto& n : s->nodes) nodes += (nodes.empty() ? "" : ", ") + n.name;
    std::printf("cluster '%s' is down in %.1f s: no clusterctl-worker, orted or mpirun of it remains on %s\n",
                s->cluster.c_str(), secs, nodes.c_str());
  }
  if (!report.clean()) {
    std::fprintf(stderr,
                 "error: cluster '%s' is not fully down: %s\n  fix: end those processes on the node (kill PID), "
                 "or reach the node again, then run 'clusterctl down %s' once more (the cluster stays recorded)\n",
                 s->cluster.c_str(), report.describe().c_str(), s->cluster.c_str());
    return 1;
  }
  return 0;
}

}  // namespace clusterctl::cli
