#include "worker/serve_main.h"

#include <pthread.h>
#include <signal.h>

#include <unistd.h>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

#include "worker/common/error.h"
#include "worker/job_setup.h"
#include "worker/model/shard_plan.h"
#include "worker/parallel/heartbeat.h"
#include "worker/parallel/job.h"
#include "worker/parallel/step_protocol.h"
#include "worker/server/batch_scheduler.h"
#include "worker/server/engine_generation_service.h"
#include "worker/server/http_server.h"
#include "worker/tokenizer/tokenizer.h"
#include "worker/tools/engine_flags.h"
#include "worker/tools/serve_flags.h"

namespace clusterctl::worker {
namespace {

namespace po = boost::program_options;

sigset_t stop_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}

// What every rank holds once the serving job is set up and all ranks agreed to go on.
struct ServeSetup {
  po::variables_map vm;
  parallel::RankModel rank_model;
  server::SchedulerOptions sched_opts;
  std::unique_ptr<model::Engine> engine;
  std::unique_ptr<tokenizer::Tokenizer> tok;  // rank 0 only
  server::ServerOptions server_opts;          // rank 0 only
};

// Every rank parses the flags and opens its part of the model; all agree before loading.
void open_serve_model(collectives::Session& session, collectives::Communicator& comm, int argc, char** argv,
                      ServeSetup& s) {
  s.rank_model = open_agreed_rank_model(session, comm, s.vm, [&] {
    po::options_description opts("Options");
    opts.add_options()("model", po::value<std::string>()->required(),
                       "GGUF model file, a directory of shards from 'clusterctl shard', or this rank's shard")(
        "serve", po::bool_switch(), "serve the OpenAI-compatible API from rank 0")(
        "split", po::value<std::string>(), "relative share of each rank, e.g. 2,1,1 (default: even)");
    cli::add_serve_flags(opts);
    cli::add_engine_flags(opts);
    cli::add_job_flags(opts);
    po::positional_options_description pos;
    pos.add("model", 1);
    po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), s.vm);
    po::notify(s.vm);
    cli::scheduler_options(s.vm);  // validates
    cli::engine_options(s.vm);
    cli::step_timeout_seconds(s.vm);
    cli::heartbeat_flags(s.vm);
  });
}

// Every rank loads its weights with a KV-cache slot per parallel sequence; rank 0 its tokenizer
// and the server's options too. All agree again before the first step.
void load_serve_engine(collectives::Session& session, collectives::Communicator& comm, ServeSetup& s) {
  s.sched_opts = cli::scheduler_options(s.vm);
  // An idle leader sends a heartbeat step well within the others' timeout for its silence.
  if (session.size() > 1) s.sched_opts.heartbeat_seconds = cli::step_timeout_seconds(s.vm) / 4;
  std::string error;
  try {
    model::EngineOptions eo = cli::engine_options(s.vm);
    eo.n_slots = server::kv_slots_for(s.sched_opts.parallel);
    s.engine = std::make_unique<model::Engine>(*s.rank_model.file, s.rank_model.plan, comm, eo);
    if (session.rank() == 0) {
      s.tok = tokenizer::Tokenizer::from_gguf(*s.rank_model.file);
      s.server_opts = cli::server_options(s.vm);  // the token file lives on rank 0's node
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  parallel::agree(comm, session.host(), error);
}

// What rank 0 shows of each rank (/v1/cluster, the dashboard): its host, the part of the model it
// computes and the weight bytes it reads per token, its node's link type. Gathered once, as bytes.
struct RankCard {
  char host[256] = {};
  char link[32] = {};
  uint64_t weight_bytes = 0;
};

std::vector<server::ClusterNode> gather_nodes(collectives::Communicator& comm, const std::string& host,
                                              const ServeSetup& s) {
  RankCard mine;
  std::memcpy(mine.host, host.data(), std::min(host.size(), sizeof mine.host - 1));
  const std::string link = s.vm["link-type"].as<std::string>();
  std::memcpy(mine.link, link.data(), std::min(link.size(), sizeof mine.link - 1));
  mine.weight_bytes = s.engine->model().weights.bytes_per_token;
  std::vector<RankCard> all(comm.rank() == 0 ? static_cast<size_t>(comm.size()) : 0);
  comm.gather(&mine, sizeof mine, all.data(), 0);
  std::vector<server::ClusterNode> nodes;
  for (int r = 0; r < static_cast<int>(all.size()); ++r) {
    const RankCard& c = all[static_cast<size_t>(r)];
    const auto& part = s.rank_model.plan.parts[static_cast<size_t>(r)];
    nodes.push_back({r, std::string(c.host, strnlen(c.host, sizeof c.host)),
                     r == 0 ? "rank 0 (API and model)" : "worker", part.describe(), c.weight_bytes,
                     std::string(c.link, strnlen(c.link, sizeof c.link))});
  }
  return nodes;
}

// How long a rank 0 that lost a node keeps answering (503, naming the node) before it ends the
// job: long enough for probes and `clusterctl status` to learn which node, and for the failed
// requests' errors to reach their clients.
constexpr int kLostNodeGraceSeconds = 10;

// The heartbeat over the cluster link (--heartbeat-link), started at the same point on every rank
// (it is collective). Rank 0 fails the service when a node falls silent; another rank that no
// longer hears rank 0 ends itself (its node, or rank 0's, is cut off).
std::unique_ptr<parallel::Heartbeat> start_heartbeat(collectives::Session& session, collectives::Communicator& comm,
                                                     const ServeSetup& s, const std::vector<std::string>& hosts,
                                                     server::BatchScheduler* scheduler) {
  const auto f = cli::heartbeat_flags(s.vm);
  if (f.link_cidr.empty() || session.size() < 2) return nullptr;
  const int rank = session.rank();
  const std::string self = collectives::rank_name(rank, session.host());
  auto on_lost = [=](const parallel::SilentPeers& silent) {
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.0f", silent.seconds);
    if (rank != 0) {
      std::fprintf(stderr,
                   "error: %s: rank 0 has sent no heartbeat over the cluster link (%s) for %s s: this node's link "
                   "or rank 0's node is down; this rank stops\n",
                   self.c_str(), f.link_cidr.c_str(), secs);
      std::fflush(stderr);
      ::_exit(4);
    }
    std::string who;
    for (size_t i = 0; i < silent.ranks.size(); ++i) {
      const int r = silent.ranks[i];
      who += (who.empty() ? "" : ", ") + (r < static_cast<int>(hosts.size()) ? hosts[r] : std::string("?")) +
             " (rank " + std::to_string(r) + ", " + silent.addresses[i] + ")";
    }
    std::string message = "node " + who + " is lost: no heartbeat over the cluster link " + f.link_cidr + " for " +
                          secs + " s (its link is down, the node is down, or its rank is stopped)";
    if (silent.all_peers && silent.ranks.size() > 1)
      message += "; no other node is heard either, so the link of rank 0's node " + hosts[0] + " may be the one down";
    message += "; the job ends in " + std::to_string(kLostNodeGraceSeconds) +
               " s (restart it with 'clusterctl up', or let 'restart: on-failure' do it)";
    std::fprintf(stderr, "error: %s: %s\n", self.c_str(), message.c_str());
    std::fflush(stderr);
    scheduler->fail(message);
    // The scheduler thread may sit in a collective that never returns: a thread of its own ends
    // the job (not the heartbeat's: the nodes still there must go on hearing rank 0 until then).
    std::thread([self, who] {
      std::this_thread::sleep_for(std::chrono::seconds(kLostNodeGraceSeconds));
      std::fprintf(stderr, "error: %s: ending the job: %s is lost\n", self.c_str(), who.c_str());
      std::fflush(stderr);
      ::_exit(4);
    }).detach();
  };
  return std::make_unique<parallel::Heartbeat>(
      comm, session.host(), parallel::HeartbeatOptions{f.link_cidr, f.interval_s, f.timeout_s}, std::move(on_lost));
}

// Rank 0: the HTTP server and the scheduler until a stop signal; then the shutdown step ends the
// other ranks. An error in a step ends every rank at once (they may sit in its collectives).
int serve_on_root(collectives::Session& session, collectives::Communicator& comm, ServeSetup& s,
                  const std::vector<server::ClusterNode>& nodes, const sigset_t& signals) {
  parallel::StepLeader leader(*s.engine);
  std::vector<std::string> hosts;
  for (const auto& n : nodes) hosts.push_back(n.host);
  server::BatchScheduler scheduler(*s.engine, leader, *s.tok,
                                   server::describe_model(*s.rank_model.file, *s.tok, s.vm["model"].as<std::string>(),
                                                          cli::model_id_flag(s.vm), s.engine->n_ctx()),
                                   nodes, s.sched_opts);
  const auto heartbeat = start_heartbeat(session, comm, s, hosts, &scheduler);
  server::HttpServer http(s.server_opts, scheduler);
  try {
    http.start();
  } catch (...) {
    leader.shutdown();  // the other ranks wait for steps: end them in order, then report
    throw;
  }
  std::printf("clusterctl-worker: serving %s on http://%s:%u/ (%d ranks)\n", scheduler.model().id.c_str(),
              s.server_opts.host.c_str(), static_cast<unsigned>(http.port()), session.size());
  std::fflush(stdout);

  std::atomic<bool> signalled{false};
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    signalled = true;
    scheduler.stop();
  });
  int code = 0;
  try {
    scheduler.run();  // this thread: the only one that calls the collectives
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s: %s\n", collectives::rank_name(0, session.host()).c_str(), e.what());
    code = 1;
  }
  if (!signalled) pthread_kill(stopper.native_handle(), SIGTERM);  // wakes the stopper (an error ended run())
  stopper.join();
  http.stop();
  if (code != 0) {
    std::fflush(stderr);
    session.abort_job(code);  // the other ranks may sit in a collective of the failed step
  }
  leader.shutdown();
  std::fprintf(stderr, "clusterctl-worker: stopped\n");
  return 0;
}

}  // namespace

bool wants_serve(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--serve")) return true;
  return false;
}

int serve_job(collectives::Session& session, collectives::Communicator& comm, int argc, char** argv) {
  // The stop signals are rank 0's to act on: every thread blocks them (threads started later
  // inherit the mask); rank 0 waits for them on a thread of its own, the other ranks end on the
  // shutdown step that follows.
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ServeSetup s;
  open_serve_model(session, comm, argc, argv, s);
  load_serve_engine(session, comm, s);
  const auto nodes = gather_nodes(comm, session.host(), s);
  // Watched from here on: loading may rightly keep the others waiting for long, a step may not.
  const double step_timeout = cli::step_timeout_seconds(s.vm);
  comm.set_stall_timeout(step_timeout, step_timeout);

  if (session.rank() != 0) {
    const auto heartbeat = start_heartbeat(session, comm, s, {}, nullptr);
    parallel::follow_steps(*s.engine);
    return 0;
  }
  return serve_on_root(session, comm, s, nodes, signals);
}

}  // namespace clusterctl::worker
