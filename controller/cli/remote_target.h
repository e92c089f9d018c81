#pragma once
// Where `clusterctl run` and `clusterctl chat` send a prompt: a running cluster recorded by
// `clusterctl up` that serves the model, a server named with --endpoint, or (nullopt) the
// engine on this machine.
#include <optional>
#include <string>

#include "controller/http/http_client.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {

struct RemoteTarget {
  http::Url url;
  std::optional<std::string> token;
  std::string description;  // "cluster 'lab' at http://..." or "http://..."
};

// --local, --endpoint URL, --token-file FILE.
void add_target_flags(po::options_description& opts);

// With --local: nullopt. With --endpoint: that server (its token from --token-file).
// Otherwise the first recorded cluster whose model_id, model path or file stem matches `model`
// and whose endpoint answers GET /health; nullopt when no cluster serves `model`.
// Throws clusterctl::Error when a cluster serves `model` but does not answer (naming the
// endpoint, pointing at `clusterctl status` / `clusterctl up` and --local), and when no cluster
// serves `model` and it is not a file either.
std::optional<RemoteTarget> resolve_target(const po::variables_map& vm, const std::string& model);

// The client for a target (its token as bearer).
http::HttpClient client_for(const RemoteTarget& target);

}  // namespace clusterctl::cli
