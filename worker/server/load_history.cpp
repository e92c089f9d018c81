#include "worker/server/load_history.h"

#include <algorithm>

namespace clusterctl::server {
namespace {

RankPerToken mean_of(uint64_t steps, double step_seconds, double comm_seconds, double link_seconds, double wait_seconds,
                     double bytes) {
  RankPerToken r;
  if (steps == 0) return r;
  const double ms = 1e3 / static_cast<double>(steps);
  r.decode_steps = steps;
  r.compute_ms = std::max(0.0, step_seconds - comm_seconds) * ms;
  r.comm_ms = comm_seconds * ms;
  r.link_ms = link_seconds * ms;
  r.wait_ms = wait_seconds * ms;
  r.bytes_sent = bytes / static_cast<double>(steps);
  return r;
}

}  // namespace

void LoadHistory::RankSums::add(const RankSums& o) {
  decode_steps += o.decode_steps;
  step_seconds += o.step_seconds;
  comm_seconds += o.comm_seconds;
  link_seconds += o.link_seconds;
  wait_seconds += o.wait_seconds;
  bytes += o.bytes;
}

int64_t LoadHistory::index_of(Clock::time_point t) const {
  return std::chrono::duration_cast<std::chrono::seconds>(t - start_).count() / kBucketSeconds;
}

LoadHistory::Bucket& LoadHistory::bucket(Clock::time_point now) {
  const int64_t i = index_of(now);
  if (buckets_.empty() || buckets_.back().index < i) {
    buckets_.emplace_back();
    buckets_.back().index = i;
    while (buckets_.size() > kBuckets || buckets_.front().index <= i - static_cast<int64_t>(kBuckets))
      buckets_.pop_front();
  }
  return buckets_.back();  // a clock never goes back: `now` is in the newest bucket
}

void LoadHistory::add_tokens(uint64_t n, Clock::time_point now) { bucket(now).tokens += n; }

void LoadHistory::observe_queue(size_t queued, size_t running, Clock::time_point now) {
  Bucket& b = bucket(now);
  b.queue_depth = std::max(b.queue_depth, queued);
  b.running = std::max(b.running, running);
}

void LoadHistory::observe_ranks(const std::vector<RankFigures>& totals, Clock::time_point now) {
  Bucket& b = bucket(now);
  if (b.ranks.size() < totals.size()) b.ranks.resize(totals.size());
  for (size_t r = 0; r < totals.size(); ++r) {
    const RankFigures before = r < last_.size() ? last_[r] : RankFigures{};
    const RankFigures& now_f = totals[r];
    if (now_f.decode_steps < before.decode_steps) continue;  // a restarted rank: no growth to count
    b.ranks[r].add({now_f.decode_steps - before.decode_steps, now_f.decode_step_seconds - before.decode_step_seconds,
                    now_f.decode_comm_seconds - before.decode_comm_seconds,
                    now_f.decode_comm_link_seconds - before.decode_comm_link_seconds,
                    now_f.decode_comm_wait_seconds - before.decode_comm_wait_seconds,
                    now_f.decode_bytes_sent - before.decode_bytes_sent});
  }
  last_ = totals;
}

std::vector<LoadPoint> LoadHistory::points(Clock::time_point now) const {
  const int64_t newest = index_of(now);
  const double into = std::chrono::duration<double>(now - start_).count() - double(newest * kBucketSeconds);
  std::vector<LoadPoint> out(kBuckets);
  auto b = buckets_.begin();
  for (size_t k = 0; k < kBuckets; ++k) {
    const int64_t i = newest - static_cast<int64_t>(kBuckets - 1 - k);
    LoadPoint& p = out[k];
    p.seconds_ago = std::max(0.0, double((newest - i) * kBucketSeconds) - (kBucketSeconds - into));
    p.ranks.resize(last_.size());
    while (b != buckets_.end() && b->index < i) ++b;
    if (b == buckets_.end() || b->index != i) continue;
    // The newest bucket is still filling: its rate is over the part that has passed.
    const double span = i == newest ? std::max(into, 0.5) : double(kBucketSeconds);
    p.tokens_per_second = static_cast<double>(b->tokens) / span;
    p.queue_depth = b->queue_depth;
    p.running = b->running;
    for (size_t r = 0; r < b->ranks.size() && r < p.ranks.size(); ++r) {
      const RankSums& s = b->ranks[r];
      p.ranks[r] = mean_of(s.decode_steps, s.step_seconds, s.comm_seconds, s.link_seconds, s.wait_seconds,
                           static_cast<double>(s.bytes));
    }
  }
  return out;
}

std::vector<RankPerToken> LoadHistory::per_token(std::chrono::seconds window, Clock::time_point now) const {
  const int64_t oldest = index_of(now - std::min<Clock::duration>(window, now - start_));
  std::vector<RankSums> sums(last_.size());
  for (const Bucket& b : buckets_) {
    if (b.index < oldest) continue;
    for (size_t r = 0; r < b.ranks.size() && r < sums.size(); ++r) sums[r].add(b.ranks[r]);
  }
  std::vector<RankPerToken> out(last_.size());
  for (size_t r = 0; r < last_.size(); ++r) {
    const RankSums& s = sums[r];
    const RankFigures& f = last_[r];
    out[r] =
        s.decode_steps > 0
            ? mean_of(s.decode_steps, s.step_seconds, s.comm_seconds, s.link_seconds, s.wait_seconds, double(s.bytes))
            : mean_of(f.decode_steps, f.decode_step_seconds, f.decode_comm_seconds, f.decode_comm_link_seconds,
                      f.decode_comm_wait_seconds, double(f.decode_bytes_sent));
  }
  return out;
}

}  // namespace clusterctl::server
