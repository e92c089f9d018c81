// `clusterctl bench MODEL.gguf --ranks N`: generation on N local ranks under mpirun, reporting per
// generated token each rank's compute time, communication time, all-reduces and bytes sent.
// `clusterctl bench net --ranks N | CLUSTER.yaml`: the all-reduce algorithms and wire formats beside
// MPI_Allreduce, on this machine's ranks or one rank a node.
// Without --ranks, llama-bench's measures on this machine's engine (worker/tools/bench.cpp).
#include <cstring>

#include "controller/cli/model_arg.h"
#include "controller/cli/mpi_launch.h"
#include "controller/hub/pull.h"
#include "worker/common/error.h"
#include "worker/tools/engine_flags.h"
#include "worker/tools/engine_verbs.h"

namespace clusterctl::cli {
namespace {

int bench_ranks(int ranks, int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>()->required(), "GGUF model file or shard directory")(
      "ranks", po::value<int>(), "ranks to run on this machine")("n-gen,n", po::value<int64_t>()->default_value(64),
                                                                 "tokens to generate (past end-of-sequence)")(
      "prompt", po::value<std::string>()->default_value("Once upon a time"), "prompt text")(
      "threads,t", po::value<int>()->default_value(1), "compute threads per rank")(
      "split", po::value<std::string>(), "relative share of each rank, e.g. 2,1")(
      "layout", po::value<std::string>(), "split-attention or replicated-attention (one all-reduce per layer)")(
      "json", po::bool_switch(), "print the worker's JSON (per_rank holds the figures)")(
      "allreduce", po::value<std::string>(), "all-reduce algorithm (auto, mpi, one-shot, recursive-doubling, ring)")(
      "transport", po::value<std::string>(), "what carries the all-reduce: auto, mpi or tcp")(
      "wire-format", po::value<std::string>(), "double (exact), float32, bf16 or q8")(
      "emulate-link", po::value<std::string>(), "EMULATION: latency=300us,bandwidth=10gbit[,jitter=..]")(
      "overlap-prompt", po::value<std::string>(),
      "a prompt's all-reduces beside its matmuls: auto (default: over a link), on or off");
  po::positional_options_description pos;
  pos.add("model", 1);
  auto vm = parse_options(argc, argv, "clusterctl bench MODEL.gguf --ranks N [-n 64] [-t 1] [--split a,b]", opts, pos);
  if (!vm) return 0;
  std::vector<std::string> args = {"--model",      hub::pull_if_named((*vm)["model"].as<std::string>(), stderr),
                                   "--prompt",     (*vm)["prompt"].as<std::string>(),
                                   "-n",           std::to_string((*vm)["n-gen"].as<int64_t>()),
                                   "--temp",       "0",
                                   "--ignore-eos", "--stats",
                                   "--threads",    std::to_string((*vm)["threads"].as<int>())};
  if (vm->count("split")) args.insert(args.end(), {"--split", (*vm)["split"].as<std::string>()});
  if ((*vm)["json"].as<bool>()) args.push_back("--json");
  for (const char* f : {"allreduce", "transport", "wire-format", "emulate-link", "layout", "overlap-prompt"})
    if (vm->count(f)) args.insert(args.end(), {std::string("--") + f, (*vm)[f].as<std::string>()});
  return launch_local_job(ranks, args);
}

}  // namespace

int bench_draft(int argc, char** argv);
int bench_net_cluster(int argc, char** argv);

int bench_command(int argc, char** argv) {
  // `bench net --ranks N [...]`: the all-reduce benchmark on N local ranks (worker/tools/net_bench);
  // `bench net CLUSTER.yaml [...]`: one rank on each node of a cluster (bench_net_cluster.cpp).
  if (argc > 1 && !std::strcmp(argv[1], "net")) {
    const auto ranks = ranks_flag(argc - 1, argv + 1);
    const bool help = argc > 2 && (!std::strcmp(argv[2], "--help") || !std::strcmp(argv[2], "-h"));
    const bool cluster = help || (argc > 2 && argv[2][0] != '-');
    if (cluster && ranks)
      throw Error("bench net takes a cluster file or --ranks N, not both: " + std::string(argv[2]) +
                  " runs one rank on each of its nodes");
    if (cluster) return bench_net_cluster(argc - 1, argv + 1);
    if (!ranks)
      throw Error(
          "bench net needs a cluster file (one rank on each node) or --ranks N (ranks on this machine), e.g. "
          "clusterctl bench net cluster.yaml, or clusterctl bench net --ranks 3");
    std::vector<std::string> args = {"--bench-net"};
    for (const auto& a : args_without_ranks(argc - 1, argv + 1)) args.push_back(a);
    return launch_local_job(*ranks, args);
  }
  // `bench MODEL --draft ngram|DRAFT.gguf [--ranks N]`: speculative against plain decoding (bench_draft.cpp).
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--draft") || !std::strncmp(argv[i], "--draft=", 8)) return bench_draft(argc, argv);
  if (auto ranks = ranks_flag(argc, argv)) return bench_ranks(*ranks, argc, argv);
  po::options_description opts;
  opts.add_options()("model", po::value<std::string>())("n-prompt,p", po::value<int64_t>())(
      "n-gen,n", po::value<int64_t>())("reps,r", po::value<int>())("bandwidth", po::value<double>());
  add_engine_flags(opts);
  po::positional_options_description pos;
  pos.add("model", 1);
  std::vector<std::string> args(argv + 1, argv + argc);
  pull_model_argument(args, opts, pos);
  return call_verb(argv[0], args, bench_main);
}

}  // namespace clusterctl::cli
