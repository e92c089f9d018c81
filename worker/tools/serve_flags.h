#pragma once
// The flags of the HTTP API that `clusterctl serve` and `clusterctl-worker --serve` share:
// --host --port --token-file --model-id --max-tokens --max-body --parallel --max-queue
// --cors-origin --allowed-host --health-open.
#include "worker/server/batch_scheduler.h"
#include "worker/server/http_server.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {

void add_serve_flags(po::options_description& opts);
// Throws clusterctl::Error naming a bad value (or an unreadable token file). Warns on stderr
// when listening beyond loopback without a token.
server::ServerOptions server_options(const po::variables_map& vm);
server::SchedulerOptions scheduler_options(const po::variables_map& vm);
// --model-id, or "" (the file name without .gguf).
std::string model_id_flag(const po::variables_map& vm);

}  // namespace clusterctl::cli
