#include "controller/cli/cluster_arg.h"

#include <filesystem>

#include "controller/config/cluster_config.h"
#include "worker/common/error.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {

std::optional<state::ClusterState> find_cluster(const std::string& arg, std::string* name) {
  std::string cluster = arg;
  if (arg.empty()) {
    auto all = state::load_all();
    if (all.size() == 1) {
      if (name) *name = all[0].cluster;
      return all[0];
    }
    if (all.empty()) {
      if (name) *name = "";
      return std::nullopt;
    }
    std::string names;
    for (const auto& s : all) names += (names.empty() ? "" : ", ") + s.cluster;
    throw Error("several clusters are up (" + names + "); name one, e.g. 'clusterctl status " + all[0].cluster + "'");
  }
  if (arg.ends_with(".yaml") || arg.ends_with(".yml") || std::filesystem::is_regular_file(arg))
    cluster = config::load_cluster_config(arg).name;
  if (name) *name = cluster;
  return state::load(cluster);
}

std::optional<ClusterVerbArgs> parse_cluster_verb(int argc, char** argv, const std::string& usage,
                                                  const std::string& json_help) {
  po::options_description opts("Options");
  opts.add_options()("cluster", po::value<std::string>()->default_value(""),
                     "cluster file or cluster name (default: the one cluster that is up)")("json", po::bool_switch(),
                                                                                           json_help.c_str());
  po::positional_options_description pos;
  pos.add("cluster", 1);
  auto vm = parse_options(argc, argv, usage, opts, pos);
  if (!vm) return std::nullopt;
  ClusterVerbArgs args;
  args.json = (*vm)["json"].as<bool>();
  args.state = find_cluster((*vm)["cluster"].as<std::string>(), &args.name);
  return args;
}

}  // namespace clusterctl::cli
