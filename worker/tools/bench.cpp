// `clusterctl bench MODEL.gguf`: prompt processing and generation speed measured as llama-bench
// measures them (pp: -p random tokens in batches from an empty cache; tg: -n tokens decoded one
// at a time from an empty cache), plus the weight bytes one generated token reads and the
// generation speed that memory bandwidth allows.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "worker/common/error.h"
#include "worker/tools/engine_flags.h"
#include "worker/tools/engine_verbs.h"
#include "worker/tools/speed_probe.h"

namespace clusterctl::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Stat {
  double mean = 0, stdev = 0;
};

Stat stat(const std::vector<double>& v) {
  Stat s;
  for (double x : v) s.mean += x;
  s.mean /= v.size();
  for (double x : v) s.stdev += (x - s.mean) * (x - s.mean);
  s.stdev = v.size() > 1 ? std::sqrt(s.stdev / (v.size() - 1)) : 0;
  return s;
}

// The figures of one bench: tokens/s of each repetition, and the bandwidth bound on generation.
struct BenchResult {
  int64_t n_prompt = 0, n_gen = 0;
  int reps = 0;
  std::vector<double> pp, tg;  // tokens/s per repetition
  double bandwidth_gbs = 0;
  bool bandwidth_measured = false;
  tools::BandwidthSample bandwidth;  // when measured
  std::string bandwidth_method;
  double bytes_per_token = 0;
  double bound_tokens_per_s = 0;
  // The decode stream (the engine's matrix-vector kernels over Q4_0 weights from memory), when the
  // bandwidth was measured: what decoding this many bytes a token gets, kernels included.
  tools::BandwidthSample stream;
};

// pp: -p random tokens in batches from an empty cache; tg: -n tokens decoded one at a time from
// an empty cache; each after a warm-up run (pages of the map, caches).
void measure_speeds(model::Engine& engine, BenchResult& r) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> any_token(0, static_cast<int32_t>(engine.hparams().n_vocab - 1));
  model::Batch batch;
  auto run_pp = [&] {
    std::vector<int32_t> tokens(r.n_prompt);
    for (auto& t : tokens) t = any_token(rng);
    auto t0 = Clock::now();
    engine.prefill(tokens, 0, 0);
    return seconds(t0);
  };
  auto run_tg = [&] {
    auto t0 = Clock::now();
    for (int64_t i = 0; i < r.n_gen; ++i) {
      batch.clear();
      batch.add(any_token(rng), static_cast<int32_t>(i), 0, true);
      engine.forward(batch);
    }
    return seconds(t0);
  };
  if (r.n_prompt > 0) {
    run_pp();
    for (int k = 0; k < r.reps; ++k) r.pp.push_back(r.n_prompt / run_pp());
  }
  if (r.n_gen > 0) {
    run_tg();
    for (int k = 0; k < r.reps; ++k) r.tg.push_back(r.n_gen / run_tg());
  }
}

void print_bench_json(const BenchResult& r, const model::Engine& engine, const gguf::GgufFile& file) {
  nlohmann::json j;
  j["model"] = file.path();
  j["threads"] = engine.threads();
  j["isa"] = kernels::isa_name(kernels::active_isa());
  j["n_prompt"] = r.n_prompt;
  j["n_gen"] = r.n_gen;
  j["reps"] = r.reps;
  if (!r.pp.empty()) j["pp_tokens_per_s"] = {{"mean", stat(r.pp).mean}, {"stdev", stat(r.pp).stdev}, {"samples", r.pp}};
  if (!r.tg.empty()) j["tg_tokens_per_s"] = {{"mean", stat(r.tg).mean}, {"stdev", stat(r.tg).stdev}, {"samples", r.tg}};
  j["weight_bytes_per_token"] = r.bytes_per_token;
  j["bandwidth_gb_s"] = r.bandwidth_gbs;
  j["bandwidth_measured"] = r.bandwidth_measured;
  if (r.bandwidth_measured)
    j["bandwidth_probe"] = {{"threads", r.bandwidth.threads},
                            {"median_gb_s", r.bandwidth.median_gbs},
                            {"min_gb_s", r.bandwidth.min_gbs},
                            {"max_gb_s", r.bandwidth.max_gbs},
                            {"method", r.bandwidth_method}};
  j["tg_bound_tokens_per_s"] = r.bound_tokens_per_s;
  if (r.bandwidth_measured)
    j["decode_stream"] = {{"median_gb_s", r.stream.median_gbs},
                          {"min_gb_s", r.stream.min_gbs},
                          {"max_gb_s", r.stream.max_gbs},
                          {"tokens_per_s", r.stream.median_gbs * 1e9 / r.bytes_per_token}};
  std::cout << j.dump(2) << "\n";
}

// llama-bench's table, then the bytes each generated token reads and the bound they set.
void print_bench_table(const BenchResult& r, const model::Engine& engine) {
  const std::string name = engine.hparams().name.empty() ? engine.hparams().arch : engine.hparams().name;
  std::printf("| model | threads | isa | test | t/s |\n|---|---|---|---|---|\n");
  if (!r.pp.empty())
    std::printf("| %s | %d | %s | pp%lld | %.2f ± %.2f |\n", name.c_str(), engine.threads(),
                kernels::isa_name(kernels::active_isa()), static_cast<long long>(r.n_prompt), stat(r.pp).mean,
                stat(r.pp).stdev);
  if (!r.tg.empty())
    std::printf("| %s | %d | %s | tg%lld | %.2f ± %.2f |\n", name.c_str(), engine.threads(),
                kernels::isa_name(kernels::active_isa()), static_cast<long long>(r.n_gen), stat(r.tg).mean,
                stat(r.tg).stdev);
  std::printf("\nweights read per generated token: %.1f MB; memory bandwidth %.1f GB/s (%s)\n", r.bytes_per_token / 1e6,
              r.bandwidth_gbs, r.bandwidth_measured ? "measured" : "--bandwidth");
  if (r.bandwidth_measured)
    std::printf("bandwidth: %.1f..%.1f GB/s over the passes at %d threads; %s\n", r.bandwidth.min_gbs,
                r.bandwidth.max_gbs, r.bandwidth.threads, r.bandwidth_method.c_str());
  std::printf("bandwidth bound on generation: %.1f tok/s", r.bound_tokens_per_s);
  if (!r.tg.empty()) std::printf(" (tg reaches %.0f %% of it)", 100.0 * stat(r.tg).mean / r.bound_tokens_per_s);
  std::printf("\n");
  if (r.bandwidth_measured) {
    const double stream_tok_s = r.stream.median_gbs * 1e9 / r.bytes_per_token;
    std::printf(
        "decode stream (the engine's Q4_0 matrix-vector kernels over as many bytes from memory): %.1f GB/s "
        "(%.1f..%.1f) of weights, %.1f tok/s at this model's bytes",
        r.stream.median_gbs, r.stream.min_gbs, r.stream.max_gbs, stream_tok_s);
    if (!r.tg.empty()) std::printf(" (tg reaches %.0f %% of it)", 100.0 * stat(r.tg).mean / stream_tok_s);
    std::printf("\n");
  }
  // The probe's buffer is 8x the last-level cache: a model far smaller is read from cache, not memory.
  if (r.bandwidth_measured && r.bytes_per_token * 8 < static_cast<double>(tools::probe_buffer_bytes()) / 2)
    std::printf("the weights a token reads may fit this machine's caches: generation can pass the memory bound\n");
}

}  // namespace

int bench_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>()->required(), "GGUF model file")(
      "n-prompt,p", po::value<int64_t>()->default_value(512), "prompt tokens for pp (0: skip)")(
      "n-gen,n", po::value<int64_t>()->default_value(128), "generated tokens for tg (0: skip)")(
      "reps,r", po::value<int>()->default_value(5), "repetitions of each test")(
      "bandwidth", po::value<double>()->default_value(0), "memory bandwidth in GB/s (0: measure it)")(
      "json", po::bool_switch(), "print the results as JSON");
  add_engine_flags(opts);
  po::positional_options_description pos;
  pos.add("model", 1);
  auto vm = parse_options(argc, argv, "clusterctl bench MODEL.gguf [-p 512] [-n 128] [--threads T] [--reps R] [--json]",
                          opts, pos);
  if (!vm) return 0;
  BenchResult r;
  r.n_prompt = (*vm)["n-prompt"].as<int64_t>();
  r.n_gen = (*vm)["n-gen"].as<int64_t>();
  r.reps = (*vm)["reps"].as<int>();
  if (r.n_prompt < 0 || r.n_gen < 0 || r.reps < 1) throw Error("-p and -n must be 0 or more and --reps at least 1");

  gguf::GgufFile file((*vm)["model"].as<std::string>());
  auto eo = engine_options(*vm);
  if (eo.n_ctx == 0) eo.n_ctx = std::max<int64_t>(r.n_prompt + r.n_gen, 1);
  auto comm = collectives::make_local_communicator();
  model::Engine engine(file, *comm, eo);
  if (engine.n_ctx() < std::max(r.n_prompt, r.n_gen))
    throw Error("the model's context of " + std::to_string(engine.n_ctx()) + " tokens is smaller than -p/-n");
  measure_speeds(engine, r);

  r.bandwidth_gbs = (*vm)["bandwidth"].as<double>();
  r.bandwidth_measured = r.bandwidth_gbs <= 0;
  if (r.bandwidth_measured) {
    kernels::ThreadPool pool(engine.threads());
    const size_t bytes = tools::probe_buffer_bytes();
    r.bandwidth = tools::measure_read_bandwidth(pool, bytes, 5);
    r.stream = tools::measure_decode_stream(pool, bytes, 5);
    r.bandwidth_gbs = r.bandwidth.median_gbs;
    r.bandwidth_method = tools::bandwidth_method(bytes, 5);
  }
  r.bytes_per_token = static_cast<double>(engine.model().weights.bytes_per_token);
  r.bound_tokens_per_s = r.bandwidth_gbs * 1e9 / r.bytes_per_token;
  if ((*vm)["json"].as<bool>())
    print_bench_json(r, engine, file);
  else
    print_bench_table(r, engine);
  return 0;
}

}  // namespace clusterctl::cli
