// `clusterctl bench MODEL.gguf --draft ngram|DRAFT.gguf [--ranks N]`: speculative decoding
// against plain decoding on N local ranks (1 by default). The runs alternate, plain then
// speculative, repetition after repetition, so a machine whose load changes meanwhile shifts
// both alike; each prints greedy tokens/s, and the speculative ones tokens per round (per pass
// of the target over every rank) and the share of drafted tokens the target kept.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "controller/cli/mpi_launch.h"
#include "controller/launch/local_worker.h"
#include "controller/launch/mpirun_command.h"
#include "worker/common/error.h"
#include "worker/tools/engine_flags.h"
#include "worker/tools/engine_verbs.h"

namespace clusterctl::cli {
namespace {

struct RunFigures {
  double tokens_per_s = 0, tokens_per_round = 1, acceptance = 0;
};

// One job's JSON report (stdout); its stderr is shown when it fails.
nlohmann::json run_job(int ranks, const std::vector<std::string>& args) {
  const auto cmd = launch::mpirun_argv(launch::local_job(ranks, static_cast<int>(std::thread::hardware_concurrency()),
                                                         geteuid() == 0, launch::local_worker_path(), args));
  const std::string err =
      (std::filesystem::temp_directory_path() / ("clusterctl-bench-draft-" + std::to_string(getpid()) + ".err"))
          .string();
  FILE* p = popen((launch::shell_command(cmd) + " 2>" + err).c_str(), "r");
  if (!p) throw Error("cannot start mpirun: install Open MPI (openmpi-bin)");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  std::stringstream messages;
  messages << std::ifstream(err).rdbuf();
  std::filesystem::remove(err);
  if (status != 0) throw Error("the benchmark job failed:\n" + messages.str());
  try {
    return nlohmann::json::parse(out);
  } catch (const std::exception&) {
    throw Error("the benchmark job printed no JSON report:\n" + out + messages.str());
  }
}

RunFigures figures_of(const nlohmann::json& j) {
  RunFigures f;
  f.tokens_per_s = j["timings"]["generate_tokens_per_s"].get<double>();
  if (j.contains("speculative")) {
    f.tokens_per_round = j["speculative"]["tokens_per_round"].get<double>();
    f.acceptance = j["speculative"]["acceptance_rate"].get<double>();
  }
  return f;
}

struct Summary {
  double mean = 0, stdev = 0, per_round = 0, acceptance = 0;
};

Summary summarize(const std::vector<RunFigures>& runs) {
  Summary s;
  for (const auto& r : runs) {
    s.mean += r.tokens_per_s / runs.size();
    s.per_round += r.tokens_per_round / runs.size();
    s.acceptance += r.acceptance / runs.size();
  }
  for (const auto& r : runs) s.stdev += (r.tokens_per_s - s.mean) * (r.tokens_per_s - s.mean);
  s.stdev = runs.size() > 1 ? std::sqrt(s.stdev / (runs.size() - 1)) : 0;
  return s;
}

}  // namespace

int bench_draft(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>()->required(), "GGUF model file or shard directory")(
      "draft", po::value<std::string>()->required(), "ngram (prompt lookup) or a draft model's GGUF file")(
      "draft-max", po::value<int>()->default_value(8), "most tokens drafted per round")(
      "draft-min", po::value<int>()->default_value(0), "fewest tokens drafted per round")(
      "ranks", po::value<int>()->default_value(1), "ranks to run on this machine")(
      "n-gen,n", po::value<int64_t>()->default_value(kGenerateTokens), "tokens to generate (past end-of-sequence)")(
      "prompt", po::value<std::string>()->default_value("Once upon a time"), "prompt text")(
      "threads,t", po::value<int>()->default_value(1), "compute threads per rank")(
      "reps,r", po::value<int>()->default_value(3), "repetitions of each (alternating)")(
      "split", po::value<std::string>(), "relative share of each rank, e.g. 2,1")("json", po::bool_switch(),
                                                                                  "print the figures as JSON")(
      "allreduce", po::value<std::string>(), "all-reduce algorithm (auto, mpi, one-shot, recursive-doubling, ring)")(
      "transport", po::value<std::string>(), "what carries the all-reduce: auto, mpi or tcp")(
      "wire-format", po::value<std::string>(), "double (exact), float32, bf16 or q8")(
      "emulate-link", po::value<std::string>(), "EMULATION: latency=300us,bandwidth=10gbit[,jitter=..]");
  po::positional_options_description pos;
  pos.add("model", 1);
  auto vm = parse_options(
      argc, argv, "clusterctl bench MODEL.gguf --draft ngram|DRAFT.gguf [--ranks N] [-n 128] [--reps 3]", opts, pos);
  if (!vm) return 0;
  const int ranks = (*vm)["ranks"].as<int>(), reps = (*vm)["reps"].as<int>();
  if (reps < 1) throw Error("--reps must be at least 1");
  std::vector<std::string> args = {"--model",      (*vm)["model"].as<std::string>(),
                                   "--prompt",     (*vm)["prompt"].as<std::string>(),
                                   "-n",           std::to_string((*vm)["n-gen"].as<int64_t>()),
                                   "--temp",       "0",
                                   "--ignore-eos", "--json",
                                   "--threads",    std::to_string((*vm)["threads"].as<int>())};
  if (vm->count("split")) args.insert(args.end(), {"--split", (*vm)["split"].as<std::string>()});
  for (const char* f : {"allreduce", "transport", "wire-format", "emulate-link"})
    if (vm->count(f)) args.insert(args.end(), {std::string("--") + f, (*vm)[f].as<std::string>()});
  std::vector<std::string> draft_args = args;
  draft_args.insert(draft_args.end(), {"--draft", (*vm)["draft"].as<std::string>(), "--draft-max",
                                       std::to_string((*vm)["draft-max"].as<int>()), "--draft-min",
                                       std::to_string((*vm)["draft-min"].as<int>())});
  std::vector<RunFigures> plain, spec;
  std::vector<int32_t> plain_ids, spec_ids;
  for (int r = 0; r < reps; ++r) {
    const auto a = run_job(ranks, args), b = run_job(ranks, draft_args);
    plain.push_back(figures_of(a));
    spec.push_back(figures_of(b));
    plain_ids = a["generated_ids"].get<std::vector<int32_t>>();
    spec_ids = b["generated_ids"].get<std::vector<int32_t>>();
  }
  const Summary p = summarize(plain), s = summarize(spec);
  const bool same = plain_ids == spec_ids;
  if ((*vm)["json"].as<bool>()) {
    nlohmann::json j;
    j["ranks"] = ranks;
    j["draft"] = (*vm)["draft"].as<std::string>();
    j["reps"] = reps;
    j["plain_tokens_per_s"] = {{"mean", p.mean}, {"stdev", p.stdev}};
    j["speculative_tokens_per_s"] = {{"mean", s.mean}, {"stdev", s.stdev}};
    j["tokens_per_round"] = s.per_round;
    j["acceptance_rate"] = s.acceptance;
    j["speedup"] = p.mean > 0 ? s.mean / p.mean : 0;
    j["same_tokens"] = same;
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("| decoding | ranks | tok/s | tokens per round | drafts accepted |\n|---|---|---|---|---|\n");
    std::printf("| plain | %d | %.1f ± %.1f | 1.00 | |\n", ranks, p.mean, p.stdev);
    std::printf("| --draft %s | %d | %.1f ± %.1f | %.2f | %.0f %% |\n", (*vm)["draft"].as<std::string>().c_str(), ranks,
                s.mean, s.stdev, s.per_round, 100 * s.acceptance);
    std::printf("\nspeculative / plain: %.2fx (%d runs each, alternating); greedy tokens %s\n",
                p.mean > 0 ? s.mean / p.mean : 0.0, reps, same ? "identical" : "DIFFER");
  }
  return same ? 0 : 1;
}

}  // namespace clusterctl::cli
