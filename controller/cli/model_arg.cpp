#include "controller/cli/model_arg.h"

#include <cstdio>

#include "controller/hub/pull.h"
#include "worker/common/human_bytes.h"

namespace clusterctl::cli {

std::optional<hub::ModelRef> pull_model_argument(std::vector<std::string>& args, const po::options_description& opts,
                                                 const po::positional_options_description& pos) {
  std::string model;
  try {
    const auto parsed = po::command_line_parser(args).options(opts).positional(pos).allow_unregistered().run();
    for (const auto& o : parsed.options)
      if (o.string_key == "model" && !o.value.empty()) model = o.value.front();
  } catch (const po::error&) {
    return std::nullopt;  // the verb's own parse names the mistake
  }
  const auto ref = hub::model_ref_to_pull(model);
  if (!ref) return std::nullopt;
  const std::string path = hub::pull_if_named(model, stderr);
  for (auto& a : args) {
    if (a == model) {
      a = path;
      break;
    }
    if (a == "--model=" + model) {
      a = "--model=" + path;
      break;
    }
  }
  return ref;
}

void use_hub_model(config::ClusterConfig& config, bool pull, std::FILE* out) {
  if (config.model_hub.empty()) return;
  const auto ref = hub::parse_model_ref(config.model_hub);
  if (!ref) return;
  if (!pull) {
    if (auto m = hub::cached_model(*ref)) config.model_path = m->path;
    return;
  }
  const hub::PulledModel m = hub::pull_model(*ref, out);
  if (m.received > 0)
    std::fprintf(out, "pulled %s: %s (%s downloaded, SHA-256 verified)\n", ref->str().c_str(),
                 human_bytes(m.bytes).c_str(), human_bytes(m.received).c_str());
  config.model_path = m.path;
}

int call_verb(const char* verb_name, const std::vector<std::string>& args, int (*verb)(int, char**)) {
  std::vector<std::string> all = {verb_name};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  return verb(static_cast<int>(all.size()), argv.data());
}

}  // namespace clusterctl::cli
