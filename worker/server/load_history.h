#pragma once
// The cluster's last minutes, for the dashboard's charts (GET /v1/cluster) and the per-token
// figures of /metrics and `clusterctl status`: tokens/s, queue depth, running sequences, and each
// rank's compute and communication milliseconds per decode step (communication split into the link's
// share and waiting), in buckets of kBucketSeconds,
// the last kBuckets of them (bounded whatever the uptime). Not thread-safe: the scheduler's
// inbox mutex guards it.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "worker/common/rank_figures.h"

namespace clusterctl::server {

// One rank's cost of a decode step (one token per running sequence), in milliseconds.
struct RankPerToken {
  double compute_ms = 0;
  double comm_ms = 0;
  double link_ms = 0;         // of comm_ms, the collectives' cost on the critical path (RankFigures)
  double wait_ms = 0;         // and waiting for slower ranks
  double bytes_sent = 0;      // per decode step
  uint64_t decode_steps = 0;  // how many steps these are the mean of (0: no figure)
};

struct LoadPoint {
  double seconds_ago = 0;  // the bucket's end, before now
  double tokens_per_second = 0;
  size_t queue_depth = 0;  // the most seen in the bucket
  size_t running = 0;
  std::vector<RankPerToken> ranks;  // by rank; decode_steps 0 where the bucket had no decode step
};

class LoadHistory {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kBucketSeconds = 2;
  static constexpr size_t kBuckets = 150;  // five minutes

  void add_tokens(uint64_t n, Clock::time_point now = Clock::now());
  void observe_queue(size_t queued, size_t running, Clock::time_point now = Clock::now());
  // Every rank's totals as just reported (parallel::StepLeader::figures()): the growth since the
  // last report goes into the bucket of `now`.
  void observe_ranks(const std::vector<RankFigures>& totals, Clock::time_point now = Clock::now());

  // One point per bucket of the last kBuckets, oldest first; a bucket nothing happened in is idle.
  std::vector<LoadPoint> points(Clock::time_point now = Clock::now()) const;
  // Each rank's mean over the decode steps of the last `window`; over all its decode steps since
  // the start when the window had none (an idle cluster still shows what a token cost).
  std::vector<RankPerToken> per_token(std::chrono::seconds window, Clock::time_point now = Clock::now()) const;
  const std::vector<RankFigures>& totals() const { return last_; }

 private:
  struct RankSums {
    uint64_t decode_steps = 0;
    double step_seconds = 0, comm_seconds = 0, link_seconds = 0, wait_seconds = 0;
    uint64_t bytes = 0;
    void add(const RankSums& o);
  };
  struct Bucket {
    int64_t index = 0;  // time since start_ / kBucketSeconds
    uint64_t tokens = 0;
    size_t queue_depth = 0, running = 0;
    std::vector<RankSums> ranks;
  };
  Bucket& bucket(Clock::time_point now);
  int64_t index_of(Clock::time_point t) const;

  Clock::time_point start_ = Clock::now();
  std::deque<Bucket> buckets_;     // ascending index, at most kBuckets
  std::vector<RankFigures> last_;  // the last report's totals
};

}  // namespace clusterctl::server
