// `clusterctl serve MODEL.gguf --ranks N`: the same server as a tensor-parallel job of N local
// ranks, `mpirun -np N clusterctl-worker --serve ...` (worker/serve_main.cpp); without --ranks,
// the server on this machine's engine (worker/tools/serve.cpp).
#include <signal.h>
#include <unistd.h>

#include "controller/cli/mpi_launch.h"
#include "worker/tools/engine_verbs.h"

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

int serve_ranks(int ranks, int argc, char** argv) {
  std::vector<std::string> args = {"--serve"};
  for (auto& a : args_without_ranks(argc, argv)) args.push_back(a);
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
  return serve_main(argc, argv);
}

}  // namespace clusterctl::cli
