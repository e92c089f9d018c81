#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace clusterctl::kernels {

// A persistent pool: threads are created once and reused for every operation.
// The calling thread takes part as worker 0. Between operations the workers spin for a short
// while before sleeping, so back-to-back operations (one per matmul while decoding) start in
// well under a microsecond instead of paying a futex wake-up each.
class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Runs fn(thread_index, n_threads) on every thread and returns when all are done.
  // One caller at a time, and not from inside a job (a nested run would wait for itself).
  void run(const std::function<void(int, int)>& fn);
  // Splits [0, n) into contiguous chunks, one call of fn(begin, end) per chunk.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);
  // Calls fn(item) for every item in [0, n_items), each thread claiming the next unclaimed one,
  // so a thread the OS delays does fewer items instead of holding the others up.
  void for_each_claimed(int64_t n_items, const std::function<void(int64_t)>& fn);

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;  // guards sleeping on cv_start_ against a missed wake-up
  std::condition_variable cv_start_;
  const std::function<void(int, int)>* job_ = nullptr;  // published by generation_ (release)
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

int default_thread_count();  // physical cores (on Apple silicon, performance cores)

}  // namespace clusterctl::kernels
