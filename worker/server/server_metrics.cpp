#include "worker/server/server_metrics.h"

#include <sstream>

namespace clusterctl::server {

namespace {

// One gauge or counter without labels, in the Prometheus text format.
template <typename Value>
void write_scalar(std::ostringstream& out, const char* name, const char* type, const char* help, const Value& value) {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n" << name << " " << value << "\n";
}

}  // namespace

void ServerMetrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{endpoint, status}];
}

void ServerMetrics::add_tokens(int prompt_tokens, int completion_tokens) {
  std::lock_guard lock(mutex_);
  prompt_tokens_ += static_cast<uint64_t>(prompt_tokens);
  completion_tokens_ += static_cast<uint64_t>(completion_tokens);
}

void ServerMetrics::record_generated_token(Clock::time_point when) {
  std::lock_guard lock(mutex_);
  recent_tokens_.push_back(when);
  while (!recent_tokens_.empty() && recent_tokens_.front() < when - window) recent_tokens_.pop_front();
}

void ServerMetrics::record_time_to_first_token(double seconds) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < std::size(kBuckets); ++i) {
    if (seconds <= kBuckets[i]) ++ttft_bucket_counts_[i];
  }
  ttft_sum_ += seconds;
  ++ttft_count_;
}

double ServerMetrics::tokens_per_second(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  while (!recent_tokens_.empty() && recent_tokens_.front() < now - window) recent_tokens_.pop_front();
  return static_cast<double>(recent_tokens_.size()) / std::chrono::duration<double>(window).count();
}

std::string ServerMetrics::prometheus_text(const ServiceStats& stats) const {
  const double tps = tokens_per_second();
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  out << "# HELP clusterctl_http_requests_total HTTP requests by endpoint and status code.\n"
         "# TYPE clusterctl_http_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    out << "clusterctl_http_requests_total{endpoint=\"" << key.first << "\",code=\"" << key.second << "\"} " << count
        << "\n";
  }
  write_scalar(out, "clusterctl_requests_in_flight", "gauge", "Requests being answered now.", in_flight_.load());
  write_scalar(out, "clusterctl_prompt_tokens_total", "counter", "Prompt tokens processed.", prompt_tokens_);
  write_scalar(out, "clusterctl_generation_tokens_total", "counter", "Tokens generated.", completion_tokens_);
  write_scalar(out, "clusterctl_generation_tokens_per_second", "gauge",
               "Tokens generated per second, all streams, last 10 s.", tps);
  out << "# HELP clusterctl_time_to_first_token_seconds From request accepted to first generated token.\n"
         "# TYPE clusterctl_time_to_first_token_seconds histogram\n";
  for (size_t i = 0; i < std::size(kBuckets); ++i) {
    out << "clusterctl_time_to_first_token_seconds_bucket{le=\"" << kBuckets[i] << "\"} " << ttft_bucket_counts_[i]
        << "\n";
  }
  out << "clusterctl_time_to_first_token_seconds_bucket{le=\"+Inf\"} " << ttft_count_ << "\n"
      << "clusterctl_time_to_first_token_seconds_sum " << ttft_sum_ << "\n"
      << "clusterctl_time_to_first_token_seconds_count " << ttft_count_ << "\n";
  write_scalar(out, "clusterctl_queue_depth", "gauge", "Requests waiting for a decoding slot.", stats.queued);
  write_scalar(out, "clusterctl_running_sequences", "gauge", "Sequences decoding now.", stats.running);
  write_scalar(out, "clusterctl_allreduce_seconds_total", "counter", "Time spent in all-reduce, rank 0.",
               stats.allreduce_seconds_total);
  write_scalar(out, "clusterctl_allreduce_total", "counter", "All-reduce operations, rank 0.", stats.allreduce_count);
  write_scalar(out, "clusterctl_draft_tokens_total", "counter", "Tokens drafted for speculative decoding (--draft).",
               stats.draft_tokens);
  write_scalar(out, "clusterctl_draft_accepted_total", "counter", "Drafted tokens the model kept.",
               stats.draft_accepted);
  write_scalar(out, "clusterctl_prompt_cache_tokens_total", "counter",
               "Prompt tokens reused from the prompt cache (not computed).", stats.prompt_tokens_cached);
  write_scalar(out, "clusterctl_prompt_eval_tokens_total", "counter", "Prompt tokens computed (prefilled).",
               stats.prompt_tokens_evaluated);
  write_scalar(out, "clusterctl_prompt_cache_hits_total", "counter", "Requests that reused a cached prompt prefix.",
               stats.prompt_cache_hits);
  return out.str();
}

}  // namespace clusterctl::server
