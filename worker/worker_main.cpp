// clusterctl-worker: the program every rank of a tensor-parallel job runs (mpirun starts them).
// Every rank loads only its slice of the model and runs the same forward pass; rank 0 tokenizes,
// drives the steps, samples and streams.
// Usage: mpirun -np N clusterctl-worker --model M.gguf --prompt "..." -n 64 --temp 0
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "clusterctl/version.h"
#include "collectives/error.h"
#include "collectives/session.h"
#include "worker/common/error.h"
#include "worker/job_setup.h"
#include "worker/model/shard_plan.h"
#include "worker/parallel/job.h"
#include "worker/parallel/step_protocol.h"
#include "worker/serve_main.h"
#include "worker/speculative/speculative_decode.h"
#include "worker/tokenizer/stream_decoder.h"
#include "worker/tokenizer/tokenizer.h"
#include "worker/tools/engine_flags.h"
#include "worker/tools/net_bench.h"
#include "worker/tools/serve_flags.h"
#include "worker/tools/speed_probe.h"

namespace {

using namespace clusterctl;
using Clock = std::chrono::steady_clock;
namespace po = boost::program_options;

// The ranks of a job are started by mpirun.
constexpr std::string_view kCollectivesBackend = "mpi";

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void add_worker_flags(po::options_description& opts) {
  opts.add_options()("model", po::value<std::string>()->required(),
                     "GGUF model file, a directory of shards from 'clusterctl shard', or this rank's shard")(
      "prompt", po::value<std::string>(), "prompt text")("prompt-ids", po::value<std::string>(),
                                                         "prompt as comma-separated token ids instead of text")(
      "split", po::value<std::string>(), "relative share of each rank, e.g. 2,1,1 (default: even)")(
      "ignore-eos", po::bool_switch(), "generate all -n tokens even past end-of-sequence")(
      "dump-logits", po::value<std::string>(),
      "teacher-forced scoring: write the logits of every prompt position (float32, rows of n_vocab) to this file")(
      "stats", po::bool_switch(), "print per-rank compute and communication time per generated token");
  cli::add_generation_flags(opts);
  cli::add_engine_flags(opts);
  cli::add_job_flags(opts);
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t at = 0;
  while (at < s.size()) {
    size_t used = 0;
    try {
      ids.push_back(std::stoi(s.substr(at), &used));
    } catch (const std::exception&) {
      throw Error("--prompt-ids '" + s + "' is not a comma-separated list of token ids");
    }
    at += used;
    if (at < s.size() && s[at] == ',') ++at;
  }
  return ids;
}

// Per-rank timings of the generation steps and resident memory, gathered to rank 0 for --stats and --json.
struct RankStats {
  double step_seconds = 0, comm_seconds = 0;
  // comm_seconds split: the collectives' cost on the critical path, and waiting for slower ranks
  // (collectives::Communicator::settle_call_log).
  double link_seconds = 0, wait_seconds = 0;
  uint64_t allreduces = 0, bytes_sent = 0;
  double rss_load_mb = 0, rss_end_mb = 0;  // resident size after load / after generation (weights paged in)
};

// Resident set size in MB: VmRSS on Linux; the peak (ru_maxrss) elsewhere.
double resident_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
#ifdef __APPLE__
  return u.ru_maxrss / 1048576.0;
#else
  return u.ru_maxrss / 1024.0;
#endif
}

// What every rank holds once the job is set up and all ranks agreed to go on.
struct Setup {
  po::variables_map vm;
  parallel::RankModel model;
  std::unique_ptr<model::Engine> engine;
  std::unique_ptr<tokenizer::Tokenizer> tok;      // rank 0 only
  std::vector<int32_t> prompt;                    // rank 0 only
  std::unique_ptr<speculative::Drafter> drafter;  // rank 0 only, with --draft
  double load_seconds = 0;
};

// Every rank parses the flags and opens its part of the model; each reports its own error and
// all agree before anything is loaded.
void open_job_model(collectives::Session& session, collectives::Communicator& comm, int argc, char** argv, Setup& s) {
  s.model = worker::open_agreed_rank_model(session, comm, s.vm, [&] {
    po::options_description opts("Options");
    add_worker_flags(opts);
    po::positional_options_description pos;  // as `clusterctl run MODEL PROMPT`
    pos.add("model", 1).add("prompt", 1);
    po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), s.vm);
    po::notify(s.vm);
    if (!s.vm.count("prompt") && !s.vm.count("prompt-ids")) throw Error("give --prompt TEXT or --prompt-ids 1,2,3");
    cli::sampler_params(s.vm);  // validates
    cli::draft_flags(s.vm);
    cli::step_timeout_seconds(s.vm);
  });
}

// Rank 0's prompt: --prompt-ids as given, or --prompt through the model's tokenizer (loaded
// unless only logits are dumped from ids).
void prepare_prompt(Setup& s) {
  if (s.vm.count("prompt-ids")) {
    s.prompt = parse_ids(s.vm["prompt-ids"].as<std::string>());
    for (int32_t id : s.prompt)
      if (id < 0 || id >= static_cast<int32_t>(s.engine->hparams().n_vocab))
        throw Error("--prompt-ids: token " + std::to_string(id) + " is outside the vocabulary of " +
                    std::to_string(s.engine->hparams().n_vocab));
  }
  if (s.vm.count("prompt") || !s.vm.count("dump-logits")) s.tok = tokenizer::Tokenizer::from_gguf(*s.model.file);
  if (s.vm.count("prompt")) s.prompt = s.tok->tokenize(s.vm["prompt"].as<std::string>(), true, true);
  if (s.prompt.empty()) throw Error("the prompt gives no tokens: give a non-empty prompt");
  if (static_cast<int64_t>(s.prompt.size()) >= s.engine->n_ctx())
    throw Error("the prompt has " + std::to_string(s.prompt.size()) + " tokens but the context holds " +
                std::to_string(s.engine->n_ctx()) + "; shorten the prompt or raise --ctx");
}

// Every rank loads its weights (rank 0 its prompt too); all agree again before the first step.
void load_job_engine(collectives::Session& session, collectives::Communicator& comm, Setup& s) {
  std::string error;
  try {
    s.engine = std::make_unique<model::Engine>(*s.model.file, s.model.plan, comm, cli::engine_options(s.vm));
    if (session.rank() == 0) {
      prepare_prompt(s);
      if (const auto d = cli::draft_flags(s.vm); d.enabled())
        s.drafter = speculative::open_drafter(d.spec, {s.model.file->get_string_array("tokenizer.ggml.tokens"),
                                                       s.engine->n_ctx(), 1, s.engine->threads(), &s.engine->pool()});
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  parallel::agree(comm, session.host(), error);
}

// --dump-logits on rank 0: teacher-forced scoring of the prompt, every position's logits to the file.
void dump_logits(model::Engine& engine, sampling::Sampler& sampler, const Setup& s) {
  parallel::StepLeader leader(engine, sampler);
  const auto logits = leader.score(s.prompt, 0, 0, 0);
  leader.shutdown();
  const std::string path = s.vm["dump-logits"].as<std::string>();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
  if (!out) throw Error("cannot write the logits to " + path);
}

// What rank 0 generated and how long the prompt and the decode steps took.
struct Generation {
  std::vector<int32_t> generated;
  std::string text;
  double prompt_s = 0, gen_s = 0;
  // Rank 0's time in collective calls during the prompt step, and how many of its all-reduces ran
  // overlapped with its matmuls (Communicator::start_allreduce_sum).
  double prompt_comm_s = 0;
  uint64_t prompt_overlapped = 0;
  std::optional<speculative::SpecStats> spec;  // with --draft
};

// Rank 0 drives the steps: the prompt, then one decode step per token until -n, a stop token or
// a stop string; the text streams to stdout unless --json.
Generation lead_generation(parallel::StepLeader& leader, const model::Engine& engine, sampling::Sampler& sampler,
                           const collectives::Communicator& comm, const Setup& s) {
  Generation g;
  const bool json = s.vm["json"].as<bool>(), ignore_eos = s.vm["ignore-eos"].as<bool>();
  std::vector<int32_t> stop_tokens;
  for (auto id : {s.tok->vocab().eos(), s.tok->vocab().eot()})
    if (id >= 0 && !ignore_eos) stop_tokens.push_back(id);
  std::vector<std::string> stops;
  if (s.vm.count("stop")) stops = s.vm["stop"].as<std::vector<std::string>>();
  tokenizer::StreamDecoder decoder(*s.tok);
  sampling::StopStrings stop_strings(stops);
  auto emit = [&](const std::string& piece) {
    g.text += piece;
    if (!json) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
  };
  if (!json) std::fputs(s.tok->detokenize(s.prompt).c_str(), stdout);
  const int64_t budget =
      std::min<int64_t>(s.vm["n-predict"].as<int64_t>(), engine.n_ctx() - static_cast<int64_t>(s.prompt.size()));
  for (int32_t t : s.prompt) sampler.accept(t);
  auto tp = Clock::now();
  const collectives::CommStats before = comm.stats();
  int32_t next = budget > 0 ? leader.step(s.prompt, 0, 0, 0) : -1;
  g.prompt_s = since(tp);
  g.prompt_comm_s = comm.stats().seconds - before.seconds;
  g.prompt_overlapped = comm.stats().overlapped_calls - before.overlapped_calls;
  auto tg = Clock::now();
  auto on_token = [&](int32_t t) {
    emit(stop_strings.feed(decoder.push(t)));
    return !stop_strings.stopped();
  };
  const auto draft = cli::draft_flags(s.vm);
  if (s.drafter && speculative::speculation_keeps(sampler.params())) {
    speculative::DraftLength length(draft.min, draft.max);
    speculative::SpecRequest req{s.prompt, next, budget, stop_tokens, 0, sampler.params().greedy(), true};
    g.spec.emplace();
    g.generated = speculative::decode_speculative(leader, *s.drafter, length, sampler, req, on_token, &*g.spec);
  } else {
    if (s.drafter)
      std::fprintf(stderr,
                   "note: no speculative decoding: --repeat-penalty and --presence-penalty need every token "
                   "of the text before the next one\n");
    int32_t pos = static_cast<int32_t>(s.prompt.size());
    for (int64_t i = 0; i < budget; ++i) {
      if (std::find(stop_tokens.begin(), stop_tokens.end(), next) != stop_tokens.end()) break;
      g.generated.push_back(next);
      sampler.accept(next);
      if (!on_token(next) || i + 1 == budget) break;
      // The measured window is the decode steps: from the first one after the prompt, on every rank.
      next = leader.step({next}, pos++, 0, 0, /*reset_stats=*/i == 0, /*decode=*/true);
    }
  }
  g.gen_s = since(tg);
  if (!stop_strings.stopped()) emit(stop_strings.feed(decoder.finish()) + stop_strings.flush());
  return g;
}

// This rank's figures of the measured window (resident sizes are filled in by the caller).
RankStats window_stats(const collectives::Communicator& comm) {
  const collectives::CommStats& c = comm.stats();
  return {parallel::stats_window_seconds(), c.seconds,         c.split.critical_seconds,
          c.split.waiting_seconds,          c.allreduce_calls, c.bytes_sent};
}

// Per generated token: the first comes from the prompt step and the first decode step (which
// resets the counters) is counted, so the window holds n - 1 steps.
double per_token(const Generation& g) {
  const int64_t n = static_cast<int64_t>(g.generated.size());
  return n > 1 ? 1.0 / (n - 1) : 1.0;
}

void print_json_report(const Setup& s, const model::Engine& engine, const Generation& g,
                       const std::vector<RankStats>& all, const std::string& allreduce) {
  const int64_t n = static_cast<int64_t>(g.generated.size());
  const double per = per_token(g);
  nlohmann::json ranks = nlohmann::json::array();
  for (size_t r = 0; r < all.size(); ++r)
    ranks.push_back({{"rank", r},
                     {"compute_s_per_token", (all[r].step_seconds - all[r].comm_seconds) * per},
                     {"comm_s_per_token", all[r].comm_seconds * per},
                     {"comm_link_s_per_token", all[r].link_seconds * per},
                     {"comm_wait_s_per_token", all[r].wait_seconds * per},
                     {"allreduces_per_token", all[r].allreduces * per},
                     {"bytes_sent_per_token", all[r].bytes_sent * per},
                     {"rss_after_load_mb", all[r].rss_load_mb},
                     {"rss_after_generation_mb", all[r].rss_end_mb}});
  const double comm0 = all[0].comm_seconds * per, step0 = all[0].step_seconds * per;
  nlohmann::json j;
  j["prompt_ids"] = s.prompt;
  j["generated_ids"] = g.generated;
  j["text"] = g.text;
  j["ranks"] = all.size();
  j["threads"] = engine.threads();
  j["split"] = s.vm.count("split") ? s.vm["split"].as<std::string>() : "";
  j["layout"] = model::layout_name(s.model.plan.layout());
  j["timings"] = {{"load_s", s.load_seconds},
                  {"prompt_tokens", s.prompt.size()},
                  {"prompt_s", g.prompt_s},
                  {"prompt_comm_s", g.prompt_comm_s},
                  {"prompt_allreduces_overlapped", g.prompt_overlapped},
                  {"generated_tokens", n},
                  {"generate_s", g.gen_s},
                  {"generate_tokens_per_s", n > 1 && g.gen_s > 0 ? (n - 1) / g.gen_s : 0},
                  {"compute_s_per_token", step0 - comm0},
                  {"comm_s_per_token", comm0},
                  {"comm_link_s_per_token", all[0].link_seconds * per},
                  {"comm_wait_s_per_token", all[0].wait_seconds * per}};
  if (g.spec)
    j["speculative"] = {{"draft", s.vm["draft"].as<std::string>()},
                        {"rounds", g.spec->rounds},
                        {"drafted", g.spec->drafted},
                        {"accepted", g.spec->accepted},
                        {"acceptance_rate", g.spec->acceptance_rate()},
                        {"tokens_per_round", g.spec->tokens_per_round()},
                        {"draft_s", g.spec->draft_s},
                        {"verify_s", g.spec->verify_s}};
  j["per_rank"] = ranks;
  if (all.size() > 1) j["allreduce"] = allreduce;
  std::cout << j.dump(2) << "\n";
}

// --stats: each rank's compute and communication per generated token, as a Markdown table.
void print_rank_table(const Generation& g, const std::vector<RankStats>& all) {
  const double per = per_token(g);
  std::fprintf(stderr,
               "per generated token (rank 0 step %.3f ms; comm = link, the collectives' cost on the critical path, "
               "+ wait, for slower ranks or a core):\n"
               "| rank | compute ms | comm ms | link ms | wait ms | all-reduces | bytes sent | "
               "RSS after load MB | RSS after generation MB |\n|---|---|---|---|---|---|---|---|---|\n",
               all[0].step_seconds * per * 1e3);
  for (size_t r = 0; r < all.size(); ++r)
    std::fprintf(stderr, "| %zu | %.3f | %.3f | %.3f | %.3f | %.1f | %.0f | %.0f | %.0f |\n", r,
                 (all[r].step_seconds - all[r].comm_seconds) * per * 1e3, all[r].comm_seconds * per * 1e3,
                 all[r].link_seconds * per * 1e3, all[r].wait_seconds * per * 1e3, all[r].allreduces * per,
                 all[r].bytes_sent * per, all[r].rss_load_mb, all[r].rss_end_mb);
}

void print_report(const Setup& s, const model::Engine& engine, const Generation& g, const std::vector<RankStats>& all,
                  const std::string& allreduce) {
  const int64_t n = static_cast<int64_t>(g.generated.size());
  if (s.vm["json"].as<bool>()) {
    print_json_report(s, engine, g, all, allreduce);
  } else {
    std::fprintf(stderr, "\n%zu ranks x %d threads: prompt %zu tokens in %.3f s; generated %lld tokens, %.2f tok/s\n",
                 all.size(), engine.threads(), s.prompt.size(), g.prompt_s, static_cast<long long>(n),
                 n > 1 && g.gen_s > 0 ? (n - 1) / g.gen_s : 0.0);
    if (g.spec)
      std::fprintf(stderr, "speculative (%s): %.2f tokens per round, %.0f %% of %lld drafted tokens accepted\n",
                   s.vm["draft"].as<std::string>().c_str(), g.spec->tokens_per_round(), 100 * g.spec->acceptance_rate(),
                   static_cast<long long>(g.spec->drafted));
  }
  if (s.vm["stats"].as<bool>()) {
    if (all.size() > 1) {
      std::fprintf(stderr, "all-reduce: %s; layout %s\n", allreduce.c_str(), model::layout_name(s.model.plan.layout()));
      std::fprintf(stderr, "prompt: rank 0 %.3f s in collective calls, %llu all-reduces overlapped with its matmuls\n",
                   g.prompt_comm_s, static_cast<unsigned long long>(g.prompt_overlapped));
    }
    print_rank_table(g, all);
  }
}

int run_job(collectives::Session& session, collectives::Communicator& comm, int argc, char** argv) {
  const bool root = session.rank() == 0;
  Setup s;
  const auto t0 = Clock::now();
  open_job_model(session, comm, argc, argv, s);
  load_job_engine(session, comm, s);
  // Watched from here on: loading may rightly keep the others waiting for long, a step may not.
  // Rank 0 sends steps back to back here, so its silence gets the same timeout as a step.
  comm.set_stall_timeout(cli::step_timeout_seconds(s.vm), cli::step_timeout_seconds(s.vm));
  s.load_seconds = since(t0);
  const double rss_load = resident_mb();
  if (root && std::getenv("CLUSTERCTL_SHOW_PLAN"))
    std::fprintf(stderr, "%s", model::describe_plan(s.model.plan, s.engine->hparams()).c_str());

  model::Engine& engine = *s.engine;
  sampling::Sampler sampler(engine.hparams().n_vocab, cli::sampler_params(s.vm));
  if (s.vm.count("dump-logits")) {
    if (root)
      dump_logits(engine, sampler, s);
    else
      parallel::follow_steps(engine);
    comm.barrier();
    return 0;
  }

  Generation g;
  RankStats mine;
  if (root) {
    parallel::StepLeader leader(engine, sampler);
    g = lead_generation(leader, engine, sampler, comm, s);
    leader.shutdown();
    if (!s.vm["json"].as<bool>()) std::printf("\n");
  } else {
    parallel::follow_steps(engine);
  }
  // The window ends after the shutdown step's header on every rank (where every rank can settle).
  comm.settle_call_log();
  mine = window_stats(comm);
  mine.rss_load_mb = rss_load;
  mine.rss_end_mb = resident_mb();
  std::vector<RankStats> all(root ? session.size() : 0);
  comm.gather(&mine, sizeof mine, all.data(), 0);
  if (root) print_report(s, engine, g, all, comm.describe());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--version")) {
      std::printf("clusterctl-worker %s\n", clusterctl::kVersion);
      return 0;
    }
    if (!std::strcmp(argv[i], "--probe-speed")) {  // doctor's probe of this node: no MPI, no model
      int threads = 0, ranks = 1;
      bool stream_only = false;
      for (int k = 1; k < argc; ++k) {
        if (!std::strcmp(argv[k], "--stream-only")) stream_only = true;
        if (k + 1 == argc) break;
        if (!std::strcmp(argv[k], "--threads")) threads = std::atoi(argv[k + 1]);
        if (!std::strcmp(argv[k], "--ranks")) ranks = std::clamp(std::atoi(argv[k + 1]), 1, 64);
      }
      return clusterctl::tools::probe_speed_main(threads, ranks, stream_only);
    }
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      po::options_description opts("Options");
      add_worker_flags(opts);
      po::options_description serve("Serve mode (--serve)");
      cli::add_serve_flags(serve);
      std::cout << "Usage: mpirun -np N clusterctl-worker --model M.gguf --prompt \"...\" [-n 64] [--temp 0] "
                   "[--split 2,1,1] [--json]\n"
                   "       mpirun -np N clusterctl-worker --model M.gguf --serve [--host 127.0.0.1] [--port 8080] "
                   "[--token-file F] [--parallel 4]\n\n"
                << opts << "\n"
                << serve << "\n";
      return 0;
    }
  }
  std::unique_ptr<collectives::Session> session;
  try {
    session = collectives::open_session(kCollectivesBackend, argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  parallel::start_orphan_watchdog(session->rank(), session->host());
  std::unique_ptr<collectives::Communicator> comm;
  try {
    comm = session->make_communicator(cli::comm_options(argc, argv));
  } catch (const collectives::JobWideCollectiveError& e) {
    // Every rank threw the same message after agreeing on it: rank 0 says it once, all end normally.
    if (session->rank() == 0) std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    // The same options on every rank: each refuses them alike; a table only one node lacks ends them all.
    std::fprintf(stderr, "error: %s: %s\n", collectives::rank_name(session->rank(), session->host()).c_str(), e.what());
    std::fflush(stderr);
    if (session->size() == 1) return 1;
    session->abort_job(1);
  }
  if (session->rank() == 0 && session->size() > 1 && comm->describe().find("emulated") != std::string::npos)
    std::fprintf(stderr, "note: %s\n", comm->describe().c_str());
  try {
    if (cli::wants_net_bench(argc, argv)) return cli::net_bench(*session, argc, argv);
    if (worker::wants_serve(argc, argv)) return worker::serve_job(*session, *comm, argc, argv);
    return run_job(*session, *comm, argc, argv);
  } catch (const parallel::JobRefused& e) {
    // Every rank knows; rank 0 holds the full message. An orderly end, no abort needed.
    if (session->rank() == 0) std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const collectives::JobWideCollectiveError& e) {  // bench net's communicators
    if (session->rank() == 0) std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    // An error only this rank saw, mid-job: the others wait in a collective, so end them all.
    std::fprintf(stderr, "error: %s: %s\n", collectives::rank_name(session->rank(), session->host()).c_str(), e.what());
    std::fflush(stderr);
    session->abort_job(1);
  }
}
