#include "worker/kernels/thread_pool.h"

#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace clusterctl::kernels {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// How long an idle worker spins before it sleeps: long enough to cover the gap between two
// matmuls of one forward pass, short enough not to hold a core while the program waits.
constexpr auto kSpinTime = std::chrono::microseconds(200);

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lk(mu_);
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_start_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    // Under the lock so a worker between its last check and its wait cannot miss the start.
    std::lock_guard lk(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_start_.notify_all();
  fn(0, n_threads_);
  // The workers run the same amount of work; wait for the stragglers by spinning, and give
  // the core away if one of them has been descheduled.
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 4096)
      cpu_relax();
    else
      std::this_thread::yield();
  }
  job_ = nullptr;
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  run([&](int ith, int nth) {
    int64_t chunk = (n + nth - 1) / nth;
    int64_t b = std::min<int64_t>(n, chunk * ith), e = std::min<int64_t>(n, b + chunk);
    if (b < e) fn(b, e);
  });
}

void ThreadPool::for_each_claimed(int64_t n_items, const std::function<void(int64_t)>& fn) {
  std::atomic<int64_t> next{0};
  run([&](int, int) {
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n_items;
         i = next.fetch_add(1, std::memory_order_relaxed))
      fn(i);
  });
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin first: the next operation usually follows within microseconds.
    uint64_t gen = generation_.load(std::memory_order_acquire);
    if (gen == seen) {
      const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
      for (int i = 0; gen == seen; ++i) {
        cpu_relax();
        gen = generation_.load(std::memory_order_acquire);
        if ((i & 255) == 255 && std::chrono::steady_clock::now() > deadline) break;
      }
    }
    if (gen == seen) {
      std::unique_lock lk(mu_);
      cv_start_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load(std::memory_order_acquire)) return;
    (*job_)(index, n_threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

int default_thread_count() {
#if defined(__APPLE__)
  // Performance cores: an efficiency core is several times slower, and every matmul waits for
  // its slowest thread. (Intel Macs have no perflevel0: all physical cores.)
  for (const char* name : {"hw.perflevel0.physicalcpu", "hw.physicalcpu"}) {
    int n = 0;
    size_t len = sizeof n;
    if (::sysctlbyname(name, &n, &len, nullptr, 0) == 0 && n > 0) return n;
  }
#endif
  // Physical cores: distinct (physical id, core id) pairs; hyperthreads do not help matmuls.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, phys = "0";
  while (std::getline(in, line)) {
    auto val = [&] { return line.substr(line.find(':') + 1); };
    if (line.rfind("physical id", 0) == 0) phys = val();
    if (line.rfind("core id", 0) == 0) cores.emplace(phys, val());
  }
  if (!cores.empty()) return static_cast<int>(cores.size());
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

}  // namespace clusterctl::kernels
