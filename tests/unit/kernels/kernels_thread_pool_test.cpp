// The persistent pool: every worker runs every job exactly once, whether it was spinning or
// asleep when the job came, and parallel_for covers its range exactly.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "worker/kernels/thread_pool.h"

namespace clusterctl::kernels {
namespace {

TEST(KernelsThreadPool, EveryWorkerRunsEveryJobOnce) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> counts(static_cast<size_t>(threads));
    for (int job = 0; job < 400; ++job) {
      pool.run([&](int ith, int nth) {
        EXPECT_EQ(nth, threads);
        counts[static_cast<size_t>(ith)].fetch_add(1);
      });
      // Now and then let the workers fall asleep so both wake-up paths are taken.
      if (job % 100 == 99) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (auto& c : counts) EXPECT_EQ(c.load(), 400);
  }
}

TEST(KernelsThreadPool, ParallelForCoversTheRangeExactlyOnce) {
  ThreadPool pool(3);
  for (int64_t n : {0, 1, 2, 7, 1000}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    pool.parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  }
}

TEST(KernelsThreadPool, DestroysCleanlyWhileWorkersSleep) {
  ThreadPool pool(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

}  // namespace
}  // namespace clusterctl::kernels
