#include "worker/tools/handover_probe.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <new>
#include <thread>

#include "collectives/algorithms/steady_wait.h"
#include "collectives/wait_policy.h"
#include "worker/common/error.h"
#include "worker/tools/speed_probe.h"

namespace clusterctl::tools {
namespace {

using collectives::steady_now_ns;

// A dependency chain of multiply-adds: nothing shortens it, and it touches no memory.
double chunk(int64_t iterations, double x) {
  for (int64_t i = 0; i < iterations; ++i) x = x * 0.9999999 + 1e-9;
  return x;
}

constexpr int kMaxRanks = 256;
volatile double calibration_sink = 0;  // the calibration's chain is used

// Shared by the forked ranks (an anonymous shared mapping; the atomics are lock-free).
struct Shared {
  std::atomic<int> arrived{0}, generation{0};  // the start
  // The exchange: the round each rank last posted in, and the answers each has had to its posts.
  std::atomic<int64_t> posted[kMaxRanks], answers[kMaxRanks];
  std::atomic<int64_t> start_ns[kMaxRanks], end_ns[kMaxRanks];
  std::atomic<double> sink{0};
};

// Every forked rank there before any starts.
void start_together(Shared& s, int parties) {
  s.arrived.fetch_add(1);
  while (s.arrived.load() < parties) std::this_thread::sleep_for(std::chrono::microseconds(20));
}

// One round of a one-shot all-reduce's exchange as MpiTransport::exchange waits where ranks do not
// fit the cores (MPI_Testall, then collectives::pause_crowded_wait, again): each rank posts its
// message to every other, and MPI moves a message only inside an MPI call of both ranks: a decode step's 16 KiB of
// doubles is past Open MPI's 4 KiB shared-memory eager limit, so its receiver reads it when its
// own test finds it and answers, and the send is done when the sender's test reads that answer.
// A rank is done once it has read every peer's message and had every peer's answer.
void exchange(Shared& s, int rank, int parties, int64_t round) {
  s.posted[rank].store(round, std::memory_order_release);
  std::vector<bool> answered(static_cast<size_t>(parties), false);
  answered[static_cast<size_t>(rank)] = true;
  int left = parties - 1;
  const int64_t start = steady_now_ns();
  for (;;) {
    for (int p = 0; p < parties && left > 0; ++p)
      if (!answered[static_cast<size_t>(p)] && s.posted[p].load(std::memory_order_acquire) >= round) {
        s.answers[p].fetch_add(1, std::memory_order_acq_rel);
        answered[static_cast<size_t>(p)] = true;
        --left;
      }
    if (left == 0 && s.answers[rank].load(std::memory_order_acquire) >= round * (parties - 1)) return;
    collectives::pause_crowded_wait(steady_now_ns() - start);
  }
}

struct Run {
  double step_ns = 0;      // from the first rank's start to the last rank's end, over the steps
  double per_rank_ns = 0;  // each rank's own time over its steps, the ranks' mean
};

// `ranks` forked processes: a few warm steps, then `steps` of a chunk each, meeting after each
// (`meeting`) or not (each rank on its own, the first start and last end still stamped).
Run run_ranks(int ranks, int steps, int64_t iterations, bool meeting) {
  if (ranks < 1 || ranks > kMaxRanks) throw Error("handover probe: 1 to 256 ranks");
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw Error("handover probe: mmap of the ranks' shared page failed");
  Shared* s = new (mem) Shared;
  constexpr int kWarm = 10;
  std::vector<pid_t> pids;
  for (int r = 0; r < ranks; ++r) {
    const pid_t pid = fork();
    if (pid < 0) break;
    if (pid == 0) {
      double x = 1 + r;
      start_together(*s, ranks);
      for (int step = 0; step < kWarm + steps; ++step) {
        if (step == kWarm) s->start_ns[r].store(steady_now_ns());
        x = chunk(iterations, x);
        if (meeting) exchange(*s, r, ranks, step + 1);
      }
      s->end_ns[r].store(steady_now_ns());
      s->sink.store(x, std::memory_order_relaxed);
      _exit(0);
    }
    pids.push_back(pid);
  }
  bool ok = static_cast<int>(pids.size()) == ranks;
  if (!ok) {
    // The ranks forked wait for the rest: kill them.
    for (pid_t p : pids) kill(p, SIGKILL);
  }
  for (pid_t p : pids) {
    int status = 0;
    ok = waitpid(p, &status, 0) == p && WIFEXITED(status) && WEXITSTATUS(status) == 0 && ok;
  }
  Run run;
  if (ok) {
    int64_t first = INT64_MAX, last = 0;
    double own = 0;
    for (int r = 0; r < ranks; ++r) {
      first = std::min(first, s->start_ns[r].load());
      last = std::max(last, s->end_ns[r].load());
      own += static_cast<double>(s->end_ns[r].load() - s->start_ns[r].load());
    }
    run.step_ns = static_cast<double>(last - first) / steps;
    run.per_rank_ns = own / ranks / steps;
  }
  s->~Shared();
  munmap(mem, sizeof(Shared));
  if (!ok) throw Error("handover probe: a forked rank failed");
  return run;
}

}  // namespace

HandoverProbe measure_handover(int cores, int reps, int steps, double chunk_us) {
  if (cores <= 0) cores = static_cast<int>(std::max(1l, sysconf(_SC_NPROCESSORS_ONLN)));
  reps = std::max(reps, 1);
  steps = std::max(steps, 1);
  // Iterations of a chunk of ~chunk_us on this core (the fastest of a few timings).
  constexpr int64_t kCalibration = 100'000;
  double ns_per_iteration = 1e9;
  double x = 1;
  for (int i = 0; i < 5; ++i) {
    const int64_t t0 = steady_now_ns();
    x = chunk(kCalibration, x);
    ns_per_iteration = std::min(ns_per_iteration, static_cast<double>(steady_now_ns() - t0) / kCalibration);
  }
  const auto iterations = static_cast<int64_t>(std::max(1.0, chunk_us * 1e3 / std::max(ns_per_iteration, 1e-3)));
  calibration_sink = x;
  std::vector<int> counts = {cores + 1};
  if (2 * cores != cores + 1) counts.push_back(2 * cores);
  std::vector<double> alone;
  std::vector<std::vector<double>> steps_ns(counts.size());
  for (int rep = 0; rep < reps; ++rep) {
    // Every core at a chunk of its own, nobody waiting: a chunk's time on a core while all are busy.
    alone.push_back(run_ranks(cores, steps, iterations, false).per_rank_ns);
    for (size_t i = 0; i < counts.size(); ++i)
      steps_ns[i].push_back(run_ranks(counts[i], steps, iterations, true).step_ns);
  }
  HandoverProbe p;
  // The fastest: other work on the cores only ever slows a chunk, and a slowed baseline would hide
  // the handover.
  p.chunk_us = *std::min_element(alone.begin(), alone.end()) / 1e3;
  for (size_t i = 0; i < counts.size(); ++i) {
    HandoverSample s;
    s.ranks = counts[i];
    // The mean, not the median: the scheduler settles the ranks into one pattern or another a
    // repetition at a time (4 on 2 cores, 504 us of turns: 513-550 us a step in some repetitions,
    // 626-872 in others, mixed in any probe), and a run's time is the sum over its synchronisations,
    // which cross both; a median took either mode (2 beyond the cores: 22 to 223 us in consecutive
    // probes), the mean of 15 their mixture.
    double sum = 0;
    for (double v : steps_ns[i]) sum += v;
    s.step_us = sum / static_cast<double>(steps_ns[i].size()) / 1e3;
    s.turns_us = std::ceil(static_cast<double>(counts[i]) / cores) * p.chunk_us;
    // Below 0: the ranks took less than the turns the planner charges (a scheduler sharing a core
    // finely): no handover to add.
    s.handover_us = std::max(s.step_us - s.turns_us, 0.0);
    p.samples.push_back(s);
  }
  p.handover_us[0] = p.samples.front().handover_us;
  p.handover_us[1] = p.samples.back().handover_us;
  return p;
}

std::string handover_method(const HandoverProbe& p, int reps, int steps) {
  std::string ranks;
  for (const auto& s : p.samples) ranks += (ranks.empty() ? "" : " and ") + std::to_string(s.ranks);
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "core handover: %s single-thread processes, each a chunk of %.0f us of multiply-adds (every core "
                "busy) then exchanging as a one-shot all-reduce over MPI's shared memory (test, yield the core; after "
                "1 ms sleep 20 us), %d "
                "steps, mean of %d; less the "
                "chunks in turns on the cores",
                ranks.c_str(), p.chunk_us, steps, reps);
  return buf;
}

}  // namespace clusterctl::tools
