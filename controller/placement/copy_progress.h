#pragma once
// The progress of a long transfer (shards copied to every node at once, a model pulled from the
// hub): one line redrawn in place on a terminal (bytes, rate, ETA), nothing until the summary
// otherwise (logs stay readable).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

namespace clusterctl::placement {

class CopyProgress {
 public:
  // `total`: bytes that may have to be sent (all shards of all nodes); `label` starts the line.
  CopyProgress(uint64_t total, std::FILE* out, std::string label = "copying shards");
  ~CopyProgress();  // stops the redraw thread and clears the line
  CopyProgress(const CopyProgress&) = delete;
  CopyProgress& operator=(const CopyProgress&) = delete;

  void add(uint64_t bytes) { done_ += bytes; }
  void finish();

 private:
  void draw(bool final_line);

  uint64_t total_;
  std::FILE* out_;
  std::string label_;
  bool tty_;
  std::atomic<uint64_t> done_{0};
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread drawer_;
};

// "1.2 MiB/s", "ETA 3 s" helpers, shared with the summary.
std::string format_rate(double bytes_per_second);

}  // namespace clusterctl::placement
