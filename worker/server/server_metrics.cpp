#include "worker/server/server_metrics.h"

#include <sstream>

namespace clusterctl::server {

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
  out << "# HELP clusterctl_requests_in_flight Requests being answered now.\n"
         "# TYPE clusterctl_requests_in_flight gauge\n"
         "clusterctl_requests_in_flight "
      << in_flight_.load() << "\n"
      << "# HELP clusterctl_prompt_tokens_total Prompt tokens processed.\n"
         "# TYPE clusterctl_prompt_tokens_total counter\n"
         "clusterctl_prompt_tokens_total "
      << prompt_tokens_ << "\n"
      << "# HELP clusterctl_generation_tokens_total Tokens generated.\n"
         "# TYPE clusterctl_generation_tokens_total counter\n"
         "clusterctl_generation_tokens_total "
      << completion_tokens_ << "\n"
      << "# HELP clusterctl_generation_tokens_per_second Tokens generated per second, all streams, last 10 s.\n"
         "# TYPE clusterctl_generation_tokens_per_second gauge\n"
         "clusterctl_generation_tokens_per_second "
      << tps << "\n"
      << "# HELP clusterctl_time_to_first_token_seconds From request accepted to first generated token.\n"
         "# TYPE clusterctl_time_to_first_token_seconds histogram\n";
  for (size_t i = 0; i < std::size(kBuckets); ++i) {
    out << "clusterctl_time_to_first_token_seconds_bucket{le=\"" << kBuckets[i] << "\"} " << ttft_bucket_counts_[i]
        << "\n";
  }
  out << "clusterctl_time_to_first_token_seconds_bucket{le=\"+Inf\"} " << ttft_count_ << "\n"
      << "clusterctl_time_to_first_token_seconds_sum " << ttft_sum_ << "\n"
      << "clusterctl_time_to_first_token_seconds_count " << ttft_count_ << "\n"
      << "# HELP clusterctl_queue_depth Requests waiting for a decoding slot.\n"
         "# TYPE clusterctl_queue_depth gauge\n"
         "clusterctl_queue_depth "
      << stats.queued << "\n"
      << "# HELP clusterctl_running_sequences Sequences decoding now.\n"
         "# TYPE clusterctl_running_sequences gauge\n"
         "clusterctl_running_sequences "
      << stats.running << "\n"
      << "# HELP clusterctl_allreduce_seconds_total Time spent in all-reduce, rank 0.\n"
         "# TYPE clusterctl_allreduce_seconds_total counter\n"
         "clusterctl_allreduce_seconds_total "
      << stats.allreduce_seconds_total << "\n"
      << "# HELP clusterctl_allreduce_total All-reduce operations, rank 0.\n"
         "# TYPE clusterctl_allreduce_total counter\n"
         "clusterctl_allreduce_total "
      << stats.allreduce_count << "\n"
      << "# HELP clusterctl_draft_tokens_total Tokens drafted for speculative decoding (--draft).\n"
         "# TYPE clusterctl_draft_tokens_total counter\n"
         "clusterctl_draft_tokens_total "
      << stats.draft_tokens << "\n"
      << "# HELP clusterctl_draft_accepted_total Drafted tokens the model kept.\n"
         "# TYPE clusterctl_draft_accepted_total counter\n"
         "clusterctl_draft_accepted_total "
      << stats.draft_accepted << "\n"
      << "# HELP clusterctl_prompt_cache_tokens_total Prompt tokens reused from the prompt cache (not computed).\n"
         "# TYPE clusterctl_prompt_cache_tokens_total counter\n"
         "clusterctl_prompt_cache_tokens_total "
      << stats.prompt_tokens_cached << "\n"
      << "# HELP clusterctl_prompt_eval_tokens_total Prompt tokens computed (prefilled).\n"
         "# TYPE clusterctl_prompt_eval_tokens_total counter\n"
         "clusterctl_prompt_eval_tokens_total "
      << stats.prompt_tokens_evaluated << "\n"
      << "# HELP clusterctl_prompt_cache_hits_total Requests that reused a cached prompt prefix.\n"
         "# TYPE clusterctl_prompt_cache_hits_total counter\n"
         "clusterctl_prompt_cache_hits_total "
      << stats.prompt_cache_hits << "\n";
  return out.str();
}

}  // namespace clusterctl::server
