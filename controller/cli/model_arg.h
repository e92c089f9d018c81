#pragma once
// The model argument of run, serve, chat and bench may name a model on Hugging Face
// ("ORG/NAME:QUANT", controller/hub/model_ref.h): the controller pulls it (controller/hub/pull.h)
// and the engine, local or under mpirun, gets the file's path. The workers never touch the network.
#include <optional>
#include <string>
#include <vector>

#include "controller/config/cluster_config.h"
#include "controller/hub/model_ref.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {

// In `args` (a verb's arguments after the verb, described by `opts` and `pos`; options it does not
// know are passed over), the value of "model" (positional or --model): when it names a model on
// Hugging Face and no file of that name exists, the model is pulled and its path put in its place.
// Returns the name pulled, if any.
std::optional<hub::ModelRef> pull_model_argument(std::vector<std::string>& args, const po::options_description& opts,
                                                 const po::positional_options_description& pos);

// A cluster file's `model:` naming a model on Hugging Face: with `pull`, pulled (progress and a
// summary on `out`) and model_path set to it; without, model_path set to the copy in the hub
// cache when there is one (plan, doctor and config validate read, they do not download).
void use_hub_model(config::ClusterConfig& config, bool pull, std::FILE* out);

// Runs `verb` (an engine verb of worker/tools: argv[0] is the verb) with `args` as its arguments.
int call_verb(const char* verb_name, const std::vector<std::string>& args, int (*verb)(int, char**));

}  // namespace clusterctl::cli
