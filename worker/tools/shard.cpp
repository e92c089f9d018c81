// `clusterctl shard MODEL.gguf --ranks N [--split a,b,...] --out DIR`: cuts one GGUF per rank
// holding only that rank's slices (with --layout replicated-attention: every shard the whole attention), so each node
// stores and maps only its part of the model.
#include <cstdio>
#include <filesystem>

#include "worker/common/error.h"
#include "worker/model/model.h"
#include "worker/model/shard_file.h"
#include "worker/model/shard_plan.h"
#include "worker/tools/engine_flags.h"
#include "worker/tools/engine_verbs.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {

int shard_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>()->required(), "GGUF model file to cut")(
      "ranks,r", po::value<int>()->required(), "number of ranks (one shard each)")(
      "split", po::value<std::string>(), "relative share of each rank, e.g. 2,1,1 (default: even)")(
      "out,o", po::value<std::string>()->required(), "directory for the shard files");
  add_layout_flag(opts);
  po::positional_options_description pos;
  pos.add("model", 1);
  auto vm = parse_options(argc, argv, "clusterctl shard MODEL.gguf --ranks N [--split a,b,...] [--layout L] --out DIR",
                          opts, pos);
  if (!vm) return 0;
  const int ranks = (*vm)["ranks"].as<int>();
  const std::string split_text = vm->count("split") ? (*vm)["split"].as<std::string>() : "";
  const auto split = split_text.empty() ? std::vector<double>{} : model::parse_split(split_text);

  gguf::GgufFile file((*vm)["model"].as<std::string>());
  const model::HParams hp = model::Model::read_hparams(file);
  const model::ShardPlan plan = model::plan_shards(hp, model::SplitUnits::from_model(file, hp), ranks, split,
                                                   layout_flag(*vm).value_or(model::Layout::split_attention));
  std::fputs(model::describe_plan(plan, hp).c_str(), stdout);
  const auto paths = model::write_shards(file, hp, plan, split.empty() ? "" : model::format_split(split),
                                         (*vm)["out"].as<std::string>());
  for (size_t r = 0; r < paths.size(); ++r) {
    const auto bytes = std::filesystem::file_size(paths[r]);
    std::printf("rank %zu: %s (%.1f MB, %.1f %% of the model)\n", r, paths[r].c_str(), bytes / 1e6,
                100.0 * bytes / file.file_size());
  }
  return 0;
}

}  // namespace clusterctl::cli
