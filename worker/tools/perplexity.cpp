// `clusterctl perplexity MODEL.gguf FILE`: llama-perplexity's method (worker/model/perplexity.h),
// with its output format, so the two compare directly.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "worker/common/error.h"
#include "worker/model/perplexity.h"
#include "worker/tokenizer/tokenizer.h"
#include "worker/tools/engine_flags.h"
#include "worker/tools/engine_verbs.h"

namespace clusterctl::cli {

int perplexity_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>()->required(), "GGUF model file")(
      "file", po::value<std::string>()->required(), "text file to score")(
      "chunks", po::value<int64_t>()->default_value(-1), "score at most this many chunks (-1: all)")(
      "json", po::bool_switch(), "print the result as JSON");
  add_engine_flags(opts);
  po::positional_options_description pos;
  pos.add("model", 1).add("file", 1);
  auto vm = parse_options(
      argc, argv, "clusterctl perplexity MODEL.gguf FILE [--ctx N] [--chunks K] (--ctx default 512)", opts, pos);
  if (!vm) return 0;
  const bool json = (*vm)["json"].as<bool>();

  const std::string path = (*vm)["file"].as<std::string>();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read '" + path + "': check the path");
  std::stringstream ss;
  ss << in.rdbuf();

  gguf::GgufFile file((*vm)["model"].as<std::string>());
  auto tok = tokenizer::Tokenizer::from_gguf(file);
  auto eo = engine_options(*vm);
  if (eo.n_ctx == 0) eo.n_ctx = 512;  // llama-perplexity's default
  auto comm = collectives::make_local_communicator();
  model::Engine engine(file, *comm, eo);
  if (engine.n_ctx() < eo.n_ctx)
    std::fprintf(stderr, "note: the model's context is %lld tokens; chunks use that\n",
                 static_cast<long long>(engine.n_ctx()));

  const std::vector<int32_t> tokens = tok->tokenize(ss.str(), true, false);
  const int32_t bos = tok->vocab().add_bos() ? tok->vocab().bos() : -1;
  if (!json)
    std::fprintf(stderr, "perplexity: %zu tokens, chunks of %lld, scoring the second half of each\n", tokens.size(),
                 static_cast<long long>(engine.n_ctx()));
  auto res = model::perplexity(engine, tokens, bos, (*vm)["chunks"].as<int64_t>(), [&](int64_t c, double running) {
    if (json) return;
    std::printf("[%lld]%.4f,", static_cast<long long>(c + 1), running);
    std::fflush(stdout);
  });
  if (json) {
    nlohmann::json j;
    j["tokens"] = tokens.size();
    j["n_ctx"] = engine.n_ctx();
    j["chunks"] = res.chunks;
    j["scored_tokens"] = res.scored_tokens;
    j["running_ppl"] = res.running_ppl;
    j["ppl"] = res.ppl;
    j["ppl_stderr"] = res.ppl_stderr;
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", res.ppl, res.ppl_stderr);
  }
  return 0;
}

}  // namespace clusterctl::cli
