// `clusterctl serve MODEL.gguf --ranks N`: the same server as a tensor-parallel job of N local
// ranks, `mpirun -np N clusterctl-worker --serve ...` (worker/serve_main.cpp); without --ranks,
// the server on this machine's engine (worker/tools/serve.cpp).
#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include "controller/cli/model_arg.h"
#include "controller/cli/mpi_launch.h"
#include "worker/tools/engine_flags.h"
#include "worker/tools/engine_verbs.h"
#include "worker/tools/serve_flags.h"

namespace clusterctl::cli {
namespace {

volatile sig_atomic_t g_forwarded = 0;

// clusterctl waits for mpirun in the same process group: a stop signal sent to clusterctl alone
// goes on to mpirun (which forwards it to the ranks), so no job is left behind.
void forward_to_group(int sig) {
  if (g_forwarded) return;
  g_forwarded = 1;
  signal(sig, SIG_IGN);
  kill(0, sig);
}

// serve's arguments with a model named on Hugging Face pulled and replaced by its path; the
// name becomes the API's model id unless --model-id is given.
std::vector<std::string> with_pulled_model(std::vector<std::string> args) {
  po::options_description opts;
  opts.add_options()("model", po::value<std::string>())("ranks", po::value<int>());
  add_serve_flags(opts);
  add_engine_flags(opts);
  add_job_flags(opts);
  po::positional_options_description pos;
  pos.add("model", 1);
  if (auto ref = pull_model_argument(args, opts, pos)) {
    const bool has_id = std::any_of(args.begin(), args.end(), [](const std::string& a) {
      return a == "--model-id" || a.starts_with("--model-id=");
    });
    if (!has_id) args.insert(args.end(), {"--model-id", ref->str()});
  }
  return args;
}

int serve_ranks(int ranks, int argc, char** argv) {
  std::vector<std::string> args = {"--serve"};
  for (auto& a : with_pulled_model(args_without_ranks(argc, argv))) args.push_back(a);
  // The model is positional for `serve`; the worker takes --model (its first positional is too).
  if (getpgrp() == getpid()) {
    signal(SIGTERM, forward_to_group);
    signal(SIGINT, forward_to_group);
  }
  return launch_local_job(ranks, args);
}

}  // namespace

int serve_command(int argc, char** argv) {
  if (auto ranks = ranks_flag(argc, argv)) return serve_ranks(*ranks, argc, argv);
  return call_verb(argv[0], with_pulled_model(std::vector<std::string>(argv + 1, argv + argc)), serve_main);
}

}  // namespace clusterctl::cli
