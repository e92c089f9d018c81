// `clusterctl serve MODEL.gguf`: the OpenAI-compatible HTTP API, metrics and web chat on this
// machine, over the continuous-batching scheduler (worker/server/batch_scheduler.h).
// `--ranks N` runs the same server as a tensor-parallel job of N local ranks:
// `mpirun -np N clusterctl-worker --serve ...` (worker/serve_main.cpp).
#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "controller/cli/engine_flags.h"
#include "controller/cli/mpi_launch.h"
#include "controller/cli/serve_flags.h"
#include "worker/common/error.h"
#include "worker/server/engine_generation_service.h"
#include "worker/server/http_server.h"

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

int serve_main(int argc, char** argv) {
  if (auto ranks = ranks_flag(argc, argv)) return serve_ranks(*ranks, argc, argv);
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>()->required(), "GGUF model file")(
      "ranks", po::value<int>(), "serve as a tensor-parallel job of N ranks on this machine (mpirun)");
  add_serve_flags(opts);
  add_engine_flags(opts);
  po::positional_options_description pos;
  pos.add("model", 1);
  auto vm = parse_options(argc, argv,
                          "clusterctl serve MODEL.gguf [--host 127.0.0.1] [--port 8080] [--token-file F] [--parallel 4] "
                          "[--ranks N]",
                          opts, pos);
  if (!vm) return 0;

  server::ServerOptions so = server_options(*vm);
  server::EngineServiceOptions eo;
  eo.model_path = (*vm)["model"].as<std::string>();
  eo.model_id = model_id_flag(*vm);
  eo.engine = engine_options(*vm);
  eo.scheduler = scheduler_options(*vm);

  // Block the stop signals in every thread the server starts; this thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::EngineGenerationService service(eo);
  server::HttpServer http(so, service);
  http.start();
  std::printf("serving %s on http://%s:%u/ (OpenAI API under /v1; Ctrl-C stops)\n", service.model().id.c_str(),
              so.host.c_str(), static_cast<unsigned>(http.port()));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "stopping\n");
  http.stop();
  return 0;
}

}  // namespace clusterctl::cli
