#pragma once
// The verbs of `clusterctl` that run the engine on this machine. Each receives the arguments
// after the verb (argv[0] is the verb) and returns the exit code; clusterctl's command table
// (controller/cli/commands.cpp) dispatches to them. `--ranks N` and a running cluster are the
// controller's to handle before these are called.
#include "worker/tools/options.h"

namespace clusterctl::cli {

int inspect_main(int argc, char** argv);
int tokenize_main(int argc, char** argv);
int perplexity_main(int argc, char** argv);
int bench_main(int argc, char** argv);
int model_main(int argc, char** argv);
int shard_main(int argc, char** argv);
int serve_main(int argc, char** argv);

// `clusterctl run`'s generation on this machine, from its parsed options (the generation and
// engine flags, model and prompt).
int run_local(const po::variables_map& vm);

}  // namespace clusterctl::cli
