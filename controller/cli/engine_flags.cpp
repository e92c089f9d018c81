#include "controller/cli/engine_flags.h"

#include "worker/common/error.h"

namespace clusterctl::cli {

void add_engine_flags(po::options_description& opts) {
  opts.add_options()("threads,t", po::value<int>()->default_value(0), "compute threads (0: physical cores)")(
      "ctx,c", po::value<int64_t>()->default_value(0),
      "context length in tokens (0: the model's, at most 4096; never more than the model's)")(
      "batch,b", po::value<int64_t>()->default_value(512), "tokens per forward pass when processing a prompt")(
      "kv-type", po::value<std::string>()->default_value("f16"), "KV cache type: f16 or f32");
}

model::EngineOptions engine_options(const po::variables_map& vm) {
  model::EngineOptions o;
  o.threads = vm["threads"].as<int>();
  o.n_ctx = vm["ctx"].as<int64_t>();
  o.max_batch = vm["batch"].as<int64_t>();
  const std::string kv = vm["kv-type"].as<std::string>();
  if (o.threads < 0) throw Error("--threads must be 0 (physical cores) or more");
  if (o.n_ctx < 0) throw Error("--ctx must be 0 (the model's) or a positive number of tokens");
  if (o.max_batch < 1) throw Error("--batch must be at least 1");
  if (kv == "f16") o.kv_type = gguf::GgmlType::F16;
  else if (kv == "f32") o.kv_type = gguf::GgmlType::F32;
  else throw Error("--kv-type '" + kv + "' is not supported: use f16 or f32");
  return o;
}

}  // namespace clusterctl::cli
