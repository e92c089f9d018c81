// `clusterctl supervise NAME`: the supervisor `up` starts for `restart: on-failure` (and `down` ends).
#include "clusterctl/version.h"
#include "controller/cli/plan_layout.h"
#include "controller/cli/plan_transport.h"
#include "controller/launch/supervisor.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {

int supervise_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("cluster", po::value<std::string>()->required(), "the cluster's name")(
      "timeout", po::value<int>()->default_value(120), "seconds a restart waits for /health");
  po::positional_options_description pos;
  pos.add("cluster", 1);
  auto vm = parse_options(argc, argv,
                          "clusterctl supervise NAME\n\n"
                          "Watches a cluster that 'clusterctl up' started with 'restart: on-failure' and, when it\n"
                          "stops answering, restarts it over the nodes that remain. 'up' starts it in the\n"
                          "background and 'down' ends it; there is no need to run it by hand.",
                          opts, pos);
  if (!vm) return 0;
  launch::SuperviseOptions o;
  o.health_timeout = std::chrono::seconds(std::max(1, (*vm)["timeout"].as<int>()));
  o.controller_version = kVersion;
  o.resolve_layout = [](config::ClusterConfig& c, std::FILE* out) {
    resolve_auto_layout(c, out);
    resolve_auto_transport(c, out);
  };
  return launch::supervise((*vm)["cluster"].as<std::string>(), o);
}

}  // namespace clusterctl::cli
