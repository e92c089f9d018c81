// `clusterctl serve MODEL.gguf`: the OpenAI-compatible HTTP API, metrics and web chat on this
// machine, over the continuous-batching scheduler (worker/server/batch_scheduler.h).
// With `--ranks N` the controller runs the same server as a tensor-parallel job of N local ranks
// instead: `mpirun -np N clusterctl-worker --serve ...` (worker/serve_main.cpp).
#include <signal.h>

#include <cstdio>

#include "worker/common/error.h"
#include "worker/server/engine_generation_service.h"
#include "worker/server/http_server.h"
#include "worker/tools/engine_flags.h"
#include "worker/tools/engine_verbs.h"
#include "worker/tools/serve_flags.h"

namespace clusterctl::cli {

int serve_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>()->required(), "GGUF model file")(
      "ranks", po::value<int>(), "serve as a tensor-parallel job of N ranks on this machine (mpirun)");
  add_serve_flags(opts);
  add_engine_flags(opts);
  po::positional_options_description pos;
  pos.add("model", 1);
  auto vm =
      parse_options(argc, argv,
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
