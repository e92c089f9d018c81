#include "collectives/communicator.h"

namespace clusterctl::collectives {

void Communicator::record_call(double seconds) {
  stats_.seconds += seconds;
  if (pending_.capacity() == 0) pending_.reserve(kCallLogCapacity);
  pending_.push_back({seconds, tag_});
}

void Communicator::settle_call_log() {
  if (pending_.empty()) return;  // as on every rank: they logged the same calls
  mins_.resize(pending_.size());
  for (size_t i = 0; i < pending_.size(); ++i) mins_[i] = pending_[i].seconds;
  if (size() > 1) min_over_ranks(mins_.data(), mins_.size());
  for (size_t i = 0; i < pending_.size(); ++i) {
    const double wait = pending_[i].seconds - mins_[i];
    stats_.split.critical_seconds += mins_[i];
    stats_.split.waiting_seconds += wait;
    CallSplit& t = settled_[pending_[i].tag];
    t.critical_seconds += mins_[i];
    t.waiting_seconds += wait;
  }
  pending_.clear();
}

CallSplit Communicator::take_settled(int tag) {
  const CallSplit s = settled_[tag];
  settled_[tag] = {};
  return s;
}

std::string rank_name(int rank, const std::string& host) { return "rank " + std::to_string(rank) + " on " + host; }

}  // namespace clusterctl::collectives
