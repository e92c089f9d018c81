// `clusterctl config validate FILE`: checks a cluster file and shows how it will be read.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "controller/cli/model_arg.h"
#include "controller/config/cluster_config.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/hparams.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {
namespace {

void print_summary(const config::ClusterConfig& c) {
  std::cout << "cluster " << c.name << ": " << c.nodes.size() << (c.nodes.size() == 1 ? " node, " : " nodes, ")
            << c.total_ranks() << (c.total_ranks() == 1 ? " rank\n" : " ranks\n") << "model   " << c.model
            << (!c.model_hub.empty()   ? " (a model on Hugging Face; `up` pulls it)"
                : c.model_path.empty() ? " (a model name)"
                                       : "")
            << "\n"
            << "api     " << c.api.listen << (c.api.token_file.empty() ? "" : " (token from " + c.api.token_file + ")")
            << "\n";
  std::printf("%-14s %-26s %5s %7s %8s  %s\n", "NODE", "SSH", "RANKS", "THREADS", "SHARE", "LINK");
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    const auto& n = c.nodes[i];
    char share[16];
    if (n.weight_by_memory)
      std::snprintf(share, sizeof share, "by mem");
    else
      std::snprintf(share, sizeof share, "%.1f%%", 100 * c.weight_share(i));
    std::string ssh = n.is_local() ? "(this machine)" : n.ssh_address();
    std::printf("%-14s %-26s %5d %7s %8s  %s\n", n.name.c_str(), ssh.c_str(), n.ranks,
                n.threads ? std::to_string(n.threads).c_str() : "auto", share,
                n.link ? n.link->describe().c_str() : "-");
  }
}

int validate(const std::string& file) {
  auto c = config::load_cluster_config(file);
  use_hub_model(c, false, stderr);
  // The split can only be checked against the model's shape when the model file is here.
  if (!c.model_path.empty() && std::filesystem::exists(c.model_path)) {
    gguf::GgufFile f(c.model_path);
    auto h = model::HParams::from_gguf(f);
    auto problems = config::check_against_model(c, int(h.n_head), int(h.n_ctx_train));
    if (!problems.empty()) throw config::ConfigError(file, problems);
  }
  print_summary(c);
  std::cout << file << ": OK\n";
  return 0;
}

}  // namespace

int config_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("action", po::value<std::string>()->required(), "validate")(
      "file", po::value<std::string>()->required(), "cluster file (YAML)");
  po::positional_options_description pos;
  pos.add("action", 1).add("file", 1);
  auto vm = parse_options(argc, argv, "clusterctl config validate CLUSTER.yaml", opts, pos);
  if (!vm) return 0;
  const auto& action = (*vm)["action"].as<std::string>();
  if (action != "validate") throw Error("unknown action 'config " + action + "' (the action is 'validate')");
  return validate((*vm)["file"].as<std::string>());
}

}  // namespace clusterctl::cli
