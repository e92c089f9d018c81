// `clusterctl logs [NODE] [--cluster C] [-n LINES]`: the job's log from the head node.
#include <cstdio>
#include <iostream>
#include <sstream>

#include "controller/cli/cluster_arg.h"
#include "controller/config/cluster_config.h"
#include "controller/preflight/node_shell.h"
#include "controller/ssh/ssh_session.h"
#include "controller/state/cluster_state.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {

int logs_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("node", po::value<std::string>()->default_value(""), "only this node's ranks")(
      "cluster", po::value<std::string>()->default_value(""), "cluster file or name (default: the one that is up)")(
      "lines,n", po::value<int>()->default_value(200), "last lines to show (0: all)");
  po::positional_options_description pos;
  pos.add("node", 1);
  auto vm = parse_options(argc, argv,
                          "clusterctl logs [NODE] [--cluster CLUSTER] [-n LINES]\n\n"
                          "Prints the log of the cluster's job from the head node: mpirun's own messages and\n"
                          "every rank's output, each line tagged [job,RANK]<stdout|stderr>. With NODE, only\n"
                          "the lines of that node's ranks (and mpirun's own).",
                          opts, pos);
  if (!vm) return 0;
  std::string name;
  auto s = find_cluster((*vm)["cluster"].as<std::string>(), &name);
  if (!s)
    throw Error(name.empty() ? "no cluster is up; start one with 'clusterctl up CLUSTER.yaml'"
                             : "cluster '" + name + "' is not up");
  const std::string node = (*vm)["node"].as<std::string>();
  const int lines = (*vm)["lines"].as<int>();
  // The ranks of NODE, as mpirun's --tag-output writes them: "[<job>,<rank>]<".
  std::vector<std::string> tags;
  if (!node.empty()) {
    int first = 0;
    bool found = false;
    std::string names;
    for (const auto& n : s->nodes) {
      names += (names.empty() ? "" : ", ") + n.name;
      if (n.name == node) {
        found = true;
        for (int r = 0; r < n.ranks; ++r) tags.push_back("," + std::to_string(first + r) + "]<");
      }
      first += n.ranks;
    }
    if (!found) throw Error("cluster '" + s->cluster + "' has no node '" + node + "' (its nodes: " + names + ")");
  }
  auto config = config::load_cluster_config(s->config_path);
  const config::NodeConfig* head = nullptr;
  for (const auto& n : config.nodes)
    if (n.name == s->head_node) head = &n;
  if (!head) throw Error(s->config_path + " no longer has the head node '" + s->head_node + "'; restore the file");
  auto shell = preflight::open_node_shell(config, *head);
  auto r = shell->run(lines > 0 ? "tail -n " + std::to_string(lines) + " " + ssh::shell_quote(s->log_path)
                                : "cat " + ssh::shell_quote(s->log_path),
                      std::chrono::seconds(30));
  if (r.status != 0) throw Error("cannot read " + s->log_path + " on " + s->head_node + ": " + r.err);
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    bool rank_line = line.starts_with("[") && line.find("]<") != std::string::npos && line.find("]<") < 32;
    bool keep = tags.empty() || !rank_line;
    for (const auto& t : tags) keep = keep || line.find(t) != std::string::npos;
    if (keep) std::cout << line << "\n";
  }
  return 0;
}

}  // namespace clusterctl::cli
