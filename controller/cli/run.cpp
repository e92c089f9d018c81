// `clusterctl run MODEL "PROMPT"`: generate text, streamed to the terminal: on the running
// cluster that serves MODEL (recorded by `clusterctl up`), on the server given by --endpoint, or
// on this machine.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "controller/cli/model_arg.h"
#include "controller/cli/mpi_launch.h"
#include "controller/cli/remote_target.h"
#include "controller/http/openai_stream.h"
#include "controller/hub/pull.h"
#include "worker/common/error.h"
#include "worker/tools/engine_flags.h"
#include "worker/tools/engine_verbs.h"

namespace clusterctl::cli {
namespace {

// The sampling flags as /v1/completions request fields; flags the API has no field for are
// named on stderr when given, so nobody believes they took effect.
nlohmann::json completion_request(const po::variables_map& vm, const std::string& model_id) {
  nlohmann::json req;
  req["model"] = model_id;
  req["prompt"] = vm["prompt"].as<std::string>();
  req["max_tokens"] = vm["n-predict"].as<int64_t>();
  req["temperature"] = vm["temp"].as<float>();
  req["top_p"] = vm["top-p"].as<float>();
  if (vm.count("seed")) req["seed"] = vm["seed"].as<uint64_t>();
  if (vm.count("stop")) req["stop"] = vm["stop"].as<std::vector<std::string>>();
  req["return_token_ids"] = true;
  // Given explicitly, these reach the server's sampler too (repeat-penalty over its last 64 tokens).
  if (vm.count("top-k") && !vm["top-k"].defaulted()) req["top_k"] = std::max(0, vm["top-k"].as<int>());
  if (vm.count("min-p") && !vm["min-p"].defaulted()) req["min_p"] = vm["min-p"].as<float>();
  if (vm.count("repeat-penalty") && !vm["repeat-penalty"].defaulted())
    req["repetition_penalty"] = vm["repeat-penalty"].as<float>();
  for (const char* flag : {"presence-penalty", "repeat-last-n", "threads", "ctx", "batch", "kv-type"}) {
    if (vm.count(flag) && !vm[flag].defaulted())
      std::fprintf(stderr, "warning: --%s applies to this machine's engine only; the server ignores it\n", flag);
  }
  return req;
}

int run_remote(const po::variables_map& vm, const RemoteTarget& target) {
  const bool json = vm["json"].as<bool>();
  http::HttpClient client = client_for(target);
  const std::string model_id = http::served_model_id(client);
  const int64_t n_predict = vm["n-predict"].as<int64_t>();
  if (n_predict < 1) throw Error("-n must be at least 1 when the prompt goes to a server");
  nlohmann::json req = completion_request(vm, model_id);
  if (!json) {
    std::fprintf(stderr, "(%s, model %s)\n", target.description.c_str(), model_id.c_str());
    const std::string prompt = vm["prompt"].as<std::string>();
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    std::fflush(stdout);
  }
  http::StreamResult r = http::stream_completion(client, http::ApiKind::completions, req, [&](std::string_view piece) {
    if (json) return;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  if (json) {
    nlohmann::json j;
    if (r.has_token_ids) j["generated_ids"] = r.token_ids;
    j["text"] = r.text;
    if (vm.count("seed")) j["seed"] = vm["seed"].as<uint64_t>();
    j["endpoint"] = target.url.str();
    j["model"] = model_id;
    j["finish_reason"] = r.finish_reason;
    nlohmann::json t = {{"generated_tokens", r.completion_tokens},
                        {"time_to_first_token_s", r.time_to_first_token_s},
                        {"generate_s", r.generate_s()},
                        {"generate_tokens_per_s", r.generate_tokens_per_s()},
                        {"total_s", r.total_s}};
    if (r.prompt_tokens) t["prompt_tokens"] = *r.prompt_tokens;
    j["timings"] = t;
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("\n");
    std::fprintf(stderr, "\ntime to first token: %.3f s; generated: %d tokens in %.3f s (%.1f tok/s after the first)\n",
                 r.time_to_first_token_s, r.completion_tokens, r.total_s, r.generate_tokens_per_s());
  }
  return 0;
}

// run's options; `worker_only` adds the flags only clusterctl-worker takes (for --ranks N).
void add_run_flags(po::options_description& opts, po::positional_options_description& pos, bool worker_only) {
  opts.add_options()("model", po::value<std::string>()->required(),
                     "GGUF model file, a model on Hugging Face (ORG/NAME:QUANT, pulled first), or the model of a "
                     "running cluster (its id or file name)")("prompt", po::value<std::string>()->required(),
                                                              "prompt text");
  add_generation_flags(opts);
  add_engine_flags(opts);
  add_target_flags(opts);
  if (worker_only) {
    opts.add_options()("prompt-ids", po::value<std::string>())("split", po::value<std::string>())(
        "dump-logits", po::value<std::string>())("ignore-eos", po::bool_switch())("stats", po::bool_switch());
    add_job_flags(opts);
  }
  pos.add("model", 1).add("prompt", 1);
}

}  // namespace

int run_main(int argc, char** argv) {
  // --ranks N: the same generation on N local ranks, as `mpirun -np N clusterctl-worker` (which
  // takes the same flags, plus --split). A model named on Hugging Face is pulled here first.
  if (auto ranks = ranks_flag(argc, argv)) {
    auto args = args_without_ranks(argc, argv);
    args.erase(std::remove(args.begin(), args.end(), std::string("--local")), args.end());
    po::options_description worker_opts;
    po::positional_options_description worker_pos;
    add_run_flags(worker_opts, worker_pos, true);
    pull_model_argument(args, worker_opts, worker_pos);
    return launch_local_job(*ranks, args);
  }
  po::options_description opts("Options");
  po::positional_options_description pos;
  add_run_flags(opts, pos, false);
  auto vm = parse_options(argc, argv,
                          "clusterctl run MODEL \"PROMPT\" [-n N] [--temp T] [--local | --endpoint URL] [options]\n"
                          "Sends the prompt to the running cluster that serves MODEL (see `clusterctl status`), else\n"
                          "runs MODEL (a GGUF file, or ORG/NAME:QUANT pulled from Hugging Face) on this machine.",
                          opts, pos);
  if (!vm) return 0;
  if (auto target = resolve_target(*vm, (*vm)["model"].as<std::string>())) return run_remote(*vm, *target);
  auto& model = vm->at("model").value();
  model = hub::pull_if_named(boost::any_cast<std::string>(model), stderr);
  return run_local(*vm);
}

}  // namespace clusterctl::cli
