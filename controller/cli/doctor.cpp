// `clusterctl doctor CLUSTER.yaml [--json]`: the preflight checks of `up`, alone, as a table.
#include <iostream>

#include "clusterctl/version.h"
#include "controller/cli/model_arg.h"
#include "controller/config/cluster_config.h"
#include "controller/preflight/preflight.h"
#include "controller/preflight/report.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {

int doctor_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("file", po::value<std::string>()->required(), "cluster file (YAML)")("json", po::bool_switch(),
                                                                                          "print the checks as JSON");
  po::positional_options_description pos;
  pos.add("file", 1);
  auto vm = parse_options(argc, argv,
                          "clusterctl doctor CLUSTER.yaml [--json]\n\n"
                          "Connects to every node and checks OS/arch, the worker and its version, free memory\n"
                          "against the node's share of the model, the link interface, node-to-node reachability\n"
                          "on the link, and mpirun. Exits 1 when any check fails.",
                          opts, pos);
  if (!vm) return 0;
  auto config = config::load_cluster_config((*vm)["file"].as<std::string>());
  use_hub_model(config, false, stderr);
  auto report = preflight::run_preflight(config, {kVersion});
  if ((*vm)["json"].as<bool>())
    std::cout << preflight::report_json(config, report).dump(2) << "\n";
  else
    preflight::print_report(report, std::cout);
  return report.ok() ? 0 : 1;
}

}  // namespace clusterctl::cli
