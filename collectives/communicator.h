#pragma once
// The one interface every rank's model code talks through. A single process is world
// size 1 of the same code path (LocalCommunicator); the backends (one folder each, opened by
// name through collectives/session.h) implement the same calls and choose their algorithm (by
// message size, wire format) inside, not in callers.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace clusterctl::collectives {

// Time inside collective calls, split (for the calls settled so far: Communicator::settle_call_log)
// into what the calls added to the step and what this rank waited for slower ranks.
struct CallSplit {
  double critical_seconds = 0;  // each call's shortest time over the ranks (see settle_call_log)
  double waiting_seconds = 0;   // this rank's time in the calls beyond that shortest time
};

struct CommStats {
  uint64_t allreduce_calls = 0;
  uint64_t overlapped_calls = 0;  // of those, started with start_allreduce_sum and run beside the caller
  uint64_t bytes_sent = 0;
  double seconds = 0;  // wall time spent inside collective calls
  // Under an emulated link: the all-reduces' receives, and those that arrived after their emulated
  // arrival time (Transport::emulated_late_arrivals).
  uint64_t emulated_arrivals = 0, emulated_late_arrivals = 0;
  CallSplit split;  // of `seconds`, the calls settled so far (all of them right after a settle)
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend_name() const = 0;
  // How it all-reduces, for status lines: algorithm choice, wire format, an emulated link (said so).
  virtual std::string describe() const { return backend_name(); }

  // In place: every rank ends with the element-wise sum over ranks.
  virtual void allreduce_sum(float* data, size_t n) = 0;
  // The same in double: the row-parallel matmuls sum their split-invariant partials in double
  // and round once after this, so any split gives the same floats (kernels::matmul_row_parallel).
  virtual void allreduce_sum(double* data, size_t n) = 0;
  // Overlap: start_allreduce_sum begins the same all-reduce and returns while it runs (where
  // overlaps()), so the caller can compute what does not depend on it, e.g. the next tokens of a
  // prompt's down projection while the first tokens' sums travel. The started calls run in the
  // order started; wait_allreduces returns when all are done (data summed, as allreduce_sum leaves
  // it). Until then the caller must neither touch their data nor make another collective call.
  // Every rank starts and waits at the same points. Where the backend cannot overlap, start runs
  // the all-reduce at once.
  virtual bool overlaps() const { return false; }
  virtual void start_allreduce_sum(double* data, size_t n) { allreduce_sum(data, n); }
  virtual void wait_allreduces() {}
  // bytes from `root` to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // Every rank contributes `bytes`; rank `root` receives size()*bytes in rank order.
  virtual void gather(const void* send, size_t bytes, void* recv, int root) = 0;
  // Every rank contributes (value, index); every rank ends with the pair of the largest
  // value (lowest index on ties).
  virtual void argmax(float& value, int64_t& index) = 0;
  virtual void barrier() = 0;
  // The broadcast of the next step's header: the other ranks may rightly wait in it for long
  // (rank 0's server has no request), so it has its own timeout (set_stall_timeout).
  virtual void broadcast_next_step(void* data, size_t bytes, int root) { broadcast(data, bytes, root); }
  // When one collective call waits longer than `step_seconds`, this process prints which call
  // waited how long and exits, so mpirun ends the job as for a rank that died: a rank that hangs
  // (stopped, deadlocked, or cut off without the connection closing) would otherwise leave every
  // other rank waiting forever. A non-root rank's wait in broadcast_next_step is watched the same
  // way against `next_step_seconds`: rank 0 promises a header (a heartbeat when idle) more often.
  // 0: wait forever.
  virtual void set_stall_timeout(double step_seconds, double next_step_seconds) {
    (void)step_seconds, (void)next_step_seconds;
  }

  const CommStats& stats() const { return stats_; }
  // Starts a new measured window: every rank calls it at the same point of its calls, after
  // settle_call_log (the calls before belong to the window before).
  void reset_stats() { stats_ = {}; }

  // The split of time in collective calls into the link's share on the critical path and waiting.
  //
  // Every rank makes the same collective calls in the same order. In each call the rank that
  // arrives last waits for no one, so its time inside is what the call itself costs (the link's
  // latency and bandwidth, the transport, the sums) and what the call adds to the step; every
  // other rank's further time in that call is waiting for it (a slower rank, or one that had no free
  // core). The last to arrive is the rank with the shortest time in the call, so the per-call
  // minimum over ranks is the call's critical cost, and no clock is compared across nodes (entry and
  // exit stamps would need clocks synchronised well below a link's latency). A sum of minimums
  // cannot be formed from each rank's sums, so each rank keeps each call's duration (and its tag)
  // until the ranks settle them with one element-wise MIN all-reduce: the callers at their report
  // points (a step's figures, a benchmark's end), and the communicator itself when
  // kCallLogCapacity calls are pending. The pending count is the same on every rank (the same
  // calls), so every rank settles at the same call: memory stays bounded (24 KiB a rank), a settle
  // costs one 8 KiB all-reduce every thousand calls (timed as part of the call it precedes), and
  // the sums stay exact.
  //
  // What the minimum cannot tell apart: the last rank's own delays inside the call (a wake-up that
  // waits for a busy core) count as the call's cost; and a rank late to a one-hop call leaves it at
  // once (its peers' messages are there) while they leave a hop later, so at the next call it waits
  // that hop for them, counted as its waiting. A rank that is always the slowest truly hides the
  // link: its peers' hops never hold it up.
  //
  // Calls are logged under the tag the caller set (tag_calls, 0 by default): the step protocol
  // tags its steps and decode steps, whose settled split take_settled(tag) hands out once.
  static constexpr int kCallTags = 3;
  static constexpr size_t kCallLogCapacity = 1024;
  void tag_calls(int tag) { tag_ = tag; }
  // Collective: every rank at the same point of its calls.
  void settle_call_log();
  // The split of the calls of `tag` settled since the last take (not cleared by reset_stats).
  CallSplit take_settled(int tag);

 protected:
  // The backend times each collective call into the stats with this.
  void record_call(double seconds);
  // Settles when the log is full. A backend calls it at the start of each timed call, inside its
  // time (not at the end: settling is a collective call of its own, which must not run while
  // another one unwinds).
  void settle_if_full() {
    if (pending_.size() >= kCallLogCapacity) settle_call_log();
  }
  // Element-wise minimum over the ranks, in place; untimed (the measurement's own call).
  // World size 1 needs none.
  virtual void min_over_ranks(double* data, size_t n) { (void)data, (void)n; }

  CommStats stats_;

 private:
  struct PendingCall {
    double seconds;
    int tag;
  };
  std::vector<PendingCall> pending_;
  std::vector<double> mins_;
  int tag_ = 0;
  CallSplit settled_[kCallTags];
};

// World size 1: every call is a no-op (or a copy).
std::unique_ptr<Communicator> make_local_communicator();

// "rank R on HOST": how messages name a rank.
std::string rank_name(int rank, const std::string& host);

}  // namespace clusterctl::collectives
