// `clusterctl plan CLUSTER.yaml [--json] [--offline]`: what `up` would do, without doing it: the
// preflight, the split, every rank's slice of the model and its shard's size, each node's need
// against its free memory, and whether the cut is already in the cache.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "clusterctl/version.h"
#include "controller/cli/options.h"
#include "controller/config/cluster_config.h"
#include "controller/launch/cluster_up.h"
#include "controller/placement/shard_cache.h"
#include "controller/placement/split.h"
#include "controller/preflight/preflight.h"
#include "controller/preflight/report.h"
#include "worker/common/human_bytes.h"
#include "worker/model/model.h"
#include "worker/model/shard_file.h"
#include "worker/model/shard_plan.h"

namespace clusterctl::cli {
namespace {

struct RankPlan {
  int rank = 0;
  size_t node = 0;
  model::Partition part;
  model::Range kv;
  uint64_t shard_bytes = 0;
  uint64_t kv_bytes = 0;
};

struct NodePlan {
  int ranks = 0;
  uint64_t shard_bytes = 0, kv_bytes = 0;
  std::optional<uint64_t> free_bytes;  // unknown offline
  bool fits() const { return !free_bytes || shard_bytes + kv_bytes <= *free_bytes; }
};

std::string range(const model::Range& r) { return "[" + std::to_string(r.begin) + "," + std::to_string(r.end) + ")"; }

}  // namespace

int plan_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("file", po::value<std::string>()->required(), "cluster file (YAML)")(
      "json", po::bool_switch(), "print the plan as JSON")(
      "offline", po::bool_switch(), "skip the nodes' checks over SSH (needs explicit weights, not 'by memory')");
  po::positional_options_description pos;
  pos.add("file", 1);
  auto vm = parse_options(argc, argv,
                          "clusterctl plan CLUSTER.yaml [--json] [--offline]\n\n"
                          "Shows what 'up' would do, and starts nothing: the preflight of every node (as\n"
                          "'doctor'), the split of the model over the ranks, each rank's attention heads, FFN\n"
                          "columns and vocabulary rows with the size of its shard, each node's shards and KV\n"
                          "cache against its free memory, and whether the cut is already in this machine's\n"
                          "cache. Exits 1 when a check fails or a node lacks the memory.",
                          opts, pos);
  if (!vm) return 0;
  const std::string file = (*vm)["file"].as<std::string>();
  const bool json = (*vm)["json"].as<bool>(), offline = (*vm)["offline"].as<bool>();
  const auto config = config::load_cluster_config(file);
  if (offline && config.weights_by_memory())
    throw Error(file + ": a node's weight is 'by memory', which needs the nodes' free memory: run 'clusterctl plan " +
                file + "' without --offline, or give every node a number as its weight");

  preflight::PreflightReport report;
  if (!offline) report = preflight::run_preflight(config, {kVersion});
  const placement::RankSplit split = placement::rank_split(config, report);

  const std::string model_path = launch::model_file(config);
  gguf::GgufFile f(model_path);
  const model::HParams hp = model::Model::read_hparams(f);
  model::ShardPlan shard_plan;
  try {
    shard_plan = model::plan_shards(hp, model::SplitUnits::from_model(f, hp), split.total_ranks, split.weights);
  } catch (const Error& e) {
    throw Error("the split " + split.text + " over " + std::to_string(split.total_ranks) +
                " rank(s) cannot be cut from " + model_path + ": " + e.what() +
                "; change the nodes' 'weight' (or 'memory:', or 'ranks') in " + file);
  }
  const placement::ShardSet cut = placement::find_cut(f, split.total_ranks, split.weights);
  const int64_t context = std::min<int64_t>(config.context > 0 ? config.context : 4096, hp.n_ctx_train);

  std::vector<RankPlan> ranks;
  std::vector<NodePlan> nodes(config.nodes.size());
  for (size_t n = 0; n < config.nodes.size(); ++n) {
    if (!offline && n < report.nodes.size()) nodes[n].free_bytes = report.nodes[n].mem_usable;
    for (int r = split.first_rank[n]; r < split.first_rank[n] + config.nodes[n].ranks; ++r) {
      RankPlan rp{r, n, shard_plan.parts[r], shard_plan.parts[r].kv_heads(hp)};
      for (const auto& t : model::shard_tensors(f, hp, rp.part)) rp.shard_bytes += t.bytes;
      // F16 keys and values of the rank's KV heads: the API's sequences, a slot of the context each.
      rp.kv_bytes = 2ull * hp.n_layer * static_cast<uint64_t>(context) * rp.kv.size() * hp.head_dim * 2 *
                    static_cast<uint64_t>(config.api.parallel);
      nodes[n].ranks += 1;
      nodes[n].shard_bytes += rp.shard_bytes;
      nodes[n].kv_bytes += rp.kv_bytes;
      ranks.push_back(rp);
    }
  }
  const bool all_fit = std::all_of(nodes.begin(), nodes.end(), [](const NodePlan& n) { return n.fits(); });
  const bool ok = (offline || report.ok()) && all_fit;
  const char* by = config.weights_by_memory() ? "by free memory" : "by weight";

  if (json) {
    nlohmann::json j;
    j["cluster"] = config.name;
    j["file"] = file;
    j["model"] = {{"path", model_path}, {"architecture", hp.arch}, {"n_layer", hp.n_layer},
                  {"n_expert", hp.n_expert}, {"bytes", f.file_size()}};
    j["split"] = {{"text", split.text}, {"ranks", split.total_ranks}, {"by", by}};
    j["context"] = context;
    j["parallel"] = config.api.parallel;
    for (const auto& r : ranks)
      j["ranks"].push_back({{"rank", r.rank}, {"node", config.nodes[r.node].name},
                            {"heads", {r.part.q_heads.begin, r.part.q_heads.end}}, {"kv_heads", {r.kv.begin, r.kv.end}},
                            {"ffn", {r.part.ffn.begin, r.part.ffn.end}},
                            {"vocab", {r.part.vocab.begin, r.part.vocab.end}},
                            {"experts", {r.part.experts.begin, r.part.experts.end}}, {"shard_bytes", r.shard_bytes},
                            {"kv_bytes", r.kv_bytes}});
    for (size_t n = 0; n < nodes.size(); ++n) {
      nlohmann::json node = {{"name", config.nodes[n].name}, {"ranks", nodes[n].ranks},
                             {"shard_bytes", nodes[n].shard_bytes}, {"kv_bytes", nodes[n].kv_bytes},
                             {"need_bytes", nodes[n].shard_bytes + nodes[n].kv_bytes}, {"fits", nodes[n].fits()}};
      node["free_bytes"] = nodes[n].free_bytes ? nlohmann::json(*nodes[n].free_bytes) : nlohmann::json(nullptr);
      j["nodes"].push_back(node);
    }
    j["cut"] = {{"key", cut.key}, {"dir", cut.dir}, {"cached", cut.reused}};
    j["preflight"] = offline ? nlohmann::json(nullptr) : preflight::report_json(config, report);
    j["ok"] = ok;
    std::cout << j.dump(2) << "\n";
    return ok ? 0 : 1;
  }

  if (!offline) {
    preflight::print_report(report, std::cout);
    std::cout << "\n";
  }
  const std::string experts = hp.n_expert ? ", " + std::to_string(hp.n_expert) + " experts" : "";
  std::printf("cluster '%s': model %s (%s, %u layers%s, %s)\n", config.name.c_str(), model_path.c_str(),
              hp.arch.c_str(), hp.n_layer, experts.c_str(), human_bytes(f.file_size()).c_str());
  std::printf("split %s over %d rank(s), %s; KV cache for %d sequences of %lld tokens\n\n", split.text.c_str(),
              split.total_ranks, by, config.api.parallel, static_cast<long long>(context));
  // A mixture of experts shows which experts each rank holds (all, cut to its FFN columns, or whole ones).
  const char* experts_head = hp.n_expert ? "EXPERTS    " : "";
  std::printf("%-5s %-14s %-11s %-10s %-15s %-17s %s%s\n", "RANK", "NODE", "HEADS", "KV HEADS", "FFN", "VOCAB",
              experts_head, "SHARD");
  for (const auto& r : ranks) {
    const std::string held = hp.n_expert ? (range(r.part.experts) + std::string(11, ' ')).substr(0, 11) : "";
    std::printf("%-5d %-14s %-11s %-10s %-15s %-17s %s%s\n", r.rank, config.nodes[r.node].name.c_str(),
                range(r.part.q_heads).c_str(), range(r.kv).c_str(), range(r.part.ffn).c_str(),
                range(r.part.vocab).c_str(), held.c_str(), human_bytes(r.shard_bytes).c_str());
  }
  std::printf("\n%-14s %-6s %-11s %-11s %-11s %-11s %s\n", "NODE", "RANKS", "SHARDS", "KV CACHE", "NEEDS", "FREE",
              "FITS");
  for (size_t n = 0; n < nodes.size(); ++n)
    std::printf("%-14s %-6d %-11s %-11s %-11s %-11s %s\n", config.nodes[n].name.c_str(), nodes[n].ranks,
                human_bytes(nodes[n].shard_bytes).c_str(), human_bytes(nodes[n].kv_bytes).c_str(),
                human_bytes(nodes[n].shard_bytes + nodes[n].kv_bytes).c_str(),
                nodes[n].free_bytes ? human_bytes(*nodes[n].free_bytes).c_str() : "?",
                !nodes[n].free_bytes ? "?" : nodes[n].fits() ? "yes" : "NO");
  std::printf("\nshards: %s in %s\n", cut.reused ? "already cut" : "cut here by 'up' on first use", cut.dir.c_str());
  if (!all_fit)
    std::printf("a node lacks the memory for its shards: lower its weight, add nodes, or lower 'context' in %s\n",
                file.c_str());
  std::printf("nothing was started: 'clusterctl up %s' does this\n", file.c_str());
  return ok ? 0 : 1;
}

}  // namespace clusterctl::cli
