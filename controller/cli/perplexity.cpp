// `clusterctl perplexity MODEL.gguf FILE`: llama-perplexity's method, so the two compare
// directly: the text is cut into non-overlapping chunks of --ctx tokens, the first token of each
// chunk becomes BOS, the KV cache starts empty for each chunk, and only the second half of each
// chunk is scored (every scored token then sees at least ctx/2 tokens of context).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "controller/cli/engine_flags.h"
#include "worker/common/error.h"
#include "worker/tokenizer/tokenizer.h"

namespace clusterctl::cli {
namespace {

// -log p(token) under softmax(logits), in double as llama-perplexity computes it.
double nll_of(const float* logits, int64_t n, int32_t token) {
  float mx = logits[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i] - mx));
  return -(static_cast<double>(logits[token] - mx) - std::log(sum));
}

}  // namespace

int perplexity_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>()->required(), "GGUF model file")(
      "file", po::value<std::string>()->required(), "text file to score")(
      "chunks", po::value<int64_t>()->default_value(-1), "score at most this many chunks (-1: all)")(
      "json", po::bool_switch(), "print the result as JSON");
  add_engine_flags(opts);
  po::positional_options_description pos;
  pos.add("model", 1).add("file", 1);
  auto vm = parse_options(argc, argv, "clusterctl perplexity MODEL.gguf FILE [--ctx N] [--chunks K]", opts, pos);
  if (!vm) return 0;
  const bool json = (*vm)["json"].as<bool>();

  const std::string path = (*vm)["file"].as<std::string>();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read '" + path + "': check the path");
  std::stringstream ss;
  ss << in.rdbuf();

  gguf::GgufFile file((*vm)["model"].as<std::string>());
  auto tok = tokenizer::Tokenizer::from_gguf(file);
  auto opts_engine = engine_options(*vm);
  if (opts_engine.n_ctx == 0) opts_engine.n_ctx = 512;  // llama-perplexity's default
  auto comm = collectives::make_local_communicator();
  model::Engine engine(file, *comm, opts_engine);
  const int64_t n_ctx = engine.n_ctx(), n_vocab = engine.hparams().n_vocab;
  if (n_ctx < opts_engine.n_ctx)
    std::fprintf(stderr, "note: the model's context is %lld tokens; chunks use that\n", static_cast<long long>(n_ctx));

  const std::vector<int32_t> tokens = tok->tokenize(ss.str(), true, false);
  if (static_cast<int64_t>(tokens.size()) < 2 * n_ctx)
    throw Error("'" + path + "' gives " + std::to_string(tokens.size()) + " tokens; perplexity with a context of " +
                std::to_string(n_ctx) + " needs at least " + std::to_string(2 * n_ctx) + " (use a longer text or a smaller --ctx)");
  int64_t n_chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  if ((*vm)["chunks"].as<int64_t>() >= 0) n_chunks = std::min(n_chunks, (*vm)["chunks"].as<int64_t>());
  const int32_t bos = tok->vocab().bos();
  const bool add_bos = tok->vocab().add_bos() && bos >= 0;
  const int64_t first = n_ctx / 2;
  const int64_t step = opts_engine.max_batch;

  if (!json)
    std::fprintf(stderr, "perplexity: %zu tokens, %lld chunks of %lld, scoring the second half of each\n",
                 tokens.size(), static_cast<long long>(n_chunks), static_cast<long long>(n_ctx));
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  std::vector<double> running;
  model::Batch batch;
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t start = c * n_ctx;
    for (int64_t b0 = 0; b0 < n_ctx; b0 += step) {
      const int64_t b1 = std::min(n_ctx, b0 + step);
      batch.clear();
      for (int64_t j = b0; j < b1; ++j) {
        int32_t t = tokens[start + j];
        if (j == 0 && add_bos) t = bos;
        // Rows first .. n_ctx-2 are scored: each predicts the token after it.
        batch.add(t, static_cast<int32_t>(j), 0, j >= first && j < n_ctx - 1);
      }
      model::LocalLogits l = engine.forward(batch);
      int64_t row = 0;
      for (int64_t j = b0; j < b1; ++j) {
        if (!(j >= first && j < n_ctx - 1)) continue;
        const float* full = engine.gather(l, row++);
        const double v = nll_of(full, n_vocab, tokens[start + j + 1]);
        nll += v;
        nll2 += v * v;
        ++count;
      }
    }
    running.push_back(std::exp(nll / count));
    if (!json) {
      std::printf("[%lld]%.4f,", static_cast<long long>(c + 1), running.back());
      std::fflush(stdout);
    }
  }
  const double mean = nll / count;
  const double var = nll2 / count - mean * mean;
  const double ppl = std::exp(mean);
  const double err = count > 1 ? ppl * std::sqrt(std::max(0.0, var) / (count - 1)) : 0.0;
  if (json) {
    nlohmann::json j;
    j["tokens"] = tokens.size();
    j["n_ctx"] = n_ctx;
    j["chunks"] = n_chunks;
    j["scored_tokens"] = count;
    j["running_ppl"] = running;
    j["ppl"] = ppl;
    j["ppl_error"] = err;
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, err);
  }
  return 0;
}

}  // namespace clusterctl::cli
