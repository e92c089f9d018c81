#include "controller/cli/remote_target.h"

#include <filesystem>
#include <vector>

#include "controller/hub/model_ref.h"
#include "controller/state/cluster_state.h"
#include "worker/common/error.h"

namespace clusterctl::cli {
namespace {

namespace fs = std::filesystem;

std::string stem_of(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".gguf") == 0) name.resize(name.size() - 5);
  return name;
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return fs::equivalent(a, b, ec) && !ec;
}

bool serves(const state::ClusterState& c, const std::string& model) {
  if (model == c.model_id) return true;
  if (!c.model_path.empty() && (model == c.model_path || same_file(model, c.model_path))) return true;
  const std::string stem = stem_of(model);
  return stem == c.model_id || (!c.model_path.empty() && stem == stem_of(c.model_path));
}

// Empty when the server answers GET /health with 200; else what went wrong.
std::string health_problem(const http::HttpClient& client) {
  try {
    http::Response r = client.get("/health");
    if (r.status == 200) return "";
    return "GET /health answered HTTP " + std::to_string(r.status) + ": " + http::error_message(r);
  } catch (const http::ConnectionError& e) {
    return e.what();
  }
}

}  // namespace

void add_target_flags(po::options_description& opts) {
  opts.add_options()("local", po::bool_switch(), "run on this machine even when a running cluster serves the model")(
      "endpoint", po::value<std::string>(),
      "send the prompt to this OpenAI-compatible server (e.g. http://127.0.0.1:8080 of `clusterctl serve`)")(
      "token-file", po::value<std::string>(), "file holding the API token of --endpoint");
}

http::HttpClient client_for(const RemoteTarget& target) {
  http::ClientOptions options;
  options.bearer_token = target.token;
  return http::HttpClient(target.url, options);
}

std::optional<RemoteTarget> resolve_target(const po::variables_map& vm, const std::string& model) {
  const bool local = vm["local"].as<bool>();
  if (local && vm.count("endpoint")) throw Error("--local and --endpoint contradict each other: give one of them");
  if (local) return std::nullopt;
  if (vm.count("endpoint")) {
    RemoteTarget t{http::Url::parse(vm["endpoint"].as<std::string>()), std::nullopt, ""};
    if (vm.count("token-file")) t.token = http::read_token_file(vm["token-file"].as<std::string>());
    t.description = t.url.str();
    return t;
  }
  if (vm.count("token-file")) throw Error("--token-file goes with --endpoint (a cluster's token file is in its state)");

  std::vector<state::ClusterState> matching;
  std::vector<std::string> recorded;
  for (auto& c : state::load_all()) {
    recorded.push_back("'" + c.cluster + "' (model " + c.model_id + ")");
    if (serves(c, model)) matching.push_back(std::move(c));
  }
  if (matching.empty()) {
    if (!fs::exists(model) && !hub::model_ref_to_pull(model)) {
      std::string msg = "no running cluster serves '" + model + "' and there is no model file of that name";
      if (recorded.empty()) {
        msg += " (no cluster is recorded in " + state::state_dir() + ")";
      } else {
        msg += " (recorded clusters:";
        for (const auto& r : recorded) msg += " " + r;
        msg += ")";
      }
      throw Error(msg +
                  ": give a GGUF file or a Hugging Face model (ORG/NAME:QUANT) to run here, or start a cluster "
                  "with `clusterctl up CLUSTER.yaml`");
    }
    return std::nullopt;
  }
  std::string first_problem;
  for (const auto& c : matching) {
    RemoteTarget t{http::Url::parse(c.endpoint), std::nullopt, ""};
    if (!c.token_file.empty()) t.token = http::read_token_file(c.token_file);
    t.description = "cluster '" + c.cluster + "' at " + t.url.str();
    http::ClientOptions probe;
    probe.bearer_token = t.token;
    probe.connect_timeout = std::chrono::milliseconds(3000);
    probe.read_timeout = std::chrono::milliseconds(5000);
    const std::string problem = health_problem(http::HttpClient(t.url, probe));
    if (problem.empty()) return t;
    if (first_problem.empty()) {
      first_problem = "cluster '" + c.cluster + "' serves '" + model + "' at " + c.endpoint + " but does not answer (" +
                      problem + "): check it with `clusterctl status " + c.cluster +
                      "`, start it again with `clusterctl up " +
                      (c.config_path.empty() ? std::string("CLUSTER.yaml") : c.config_path) +
                      "`, or run on this machine with --local";
    }
  }
  throw Error(first_problem);
}

}  // namespace clusterctl::cli
