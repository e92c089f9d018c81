#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "worker/server/generation_service.h"

namespace clusterctl::server {

// What GET /metrics reports (Prometheus text format). Thread-safe.
class ServerMetrics {
 public:
  using Clock = std::chrono::steady_clock;

  void count_request(const std::string& endpoint, int status);
  void add_tokens(int prompt_tokens, int completion_tokens);
  void record_generated_token(Clock::time_point when = Clock::now());
  void record_time_to_first_token(double seconds);
  void request_started() { ++in_flight_; }
  void request_finished() { --in_flight_; }

  // Tokens generated per second over the last `window` (all requests together).
  double tokens_per_second(Clock::time_point now = Clock::now()) const;

  std::string prometheus_text(const ServiceStats& stats) const;

  static constexpr std::chrono::seconds window{10};

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0;
  uint64_t completion_tokens_ = 0;
  mutable std::deque<Clock::time_point> recent_tokens_;
  // time to first token: histogram buckets (seconds) + sum and count
  static constexpr double kBuckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  uint64_t ttft_bucket_counts_[std::size(kBuckets)] = {};
  double ttft_sum_ = 0;
  uint64_t ttft_count_ = 0;
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace clusterctl::server
