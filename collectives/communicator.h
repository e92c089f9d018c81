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

struct CommStats {
  uint64_t allreduce_calls = 0;
  uint64_t bytes_sent = 0;
  double seconds = 0;  // wall time spent inside collective calls
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
  void reset_stats() { stats_ = {}; }

 protected:
  CommStats stats_;
};

// World size 1: every call is a no-op (or a copy).
std::unique_ptr<Communicator> make_local_communicator();

// "rank R on HOST": how messages name a rank.
std::string rank_name(int rank, const std::string& host);

}  // namespace clusterctl::collectives
