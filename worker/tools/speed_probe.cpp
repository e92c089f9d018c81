#include "worker/tools/speed_probe.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <latch>
#include <memory>
#include <random>
#include <thread>

#include "worker/common/large_buffer.h"
#include "worker/kernels/kernels.h"

namespace clusterctl::tools {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr size_t kMatrixBytes = size_t(4) << 20;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

size_t probe_buffer_bytes() {
  long llc = 0;
#ifdef _SC_LEVEL3_CACHE_SIZE
  llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
  if (llc <= 0) llc = 32l << 20;
  // Past 1 GiB the figure no longer changes, and the probe would crowd a busy node's memory.
  return std::clamp(size_t(llc) * 8 / kMatrixBytes * kMatrixBytes, size_t(256) << 20, size_t(1) << 30);
}

DecodeShapedReads::DecodeShapedReads(kernels::ThreadPool& pool, size_t bytes)
    : pool_(pool),
      bytes_(std::max(bytes / kMatrixBytes, size_t(1)) * kMatrixBytes),
      // On huge pages where the kernel gives them, as the engine's packed weights are (large_buffer.h).
      storage_(allocate_large_buffer(bytes_)) {
  auto* const buf = reinterpret_cast<uint64_t*>(storage_.get());
  const size_t n = bytes_ / sizeof(uint64_t);
  // First touch by the threads that will read it (their NUMA node), and every page mapped
  // before anything is timed.
  pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  });
  item_sums_.assign(static_cast<size_t>(pool.size()) * 8 * 8, 0);
}

DecodeShapedReads::~DecodeShapedReads() {
  uint64_t keep = 0;
  for (auto s : item_sums_) keep += s;
  if (keep == 42) std::fprintf(stderr, " ");  // keeps the reads from being optimised away
}

void DecodeShapedReads::pass(const std::function<void()>& after_matrix) {
  const auto* const buf = reinterpret_cast<const uint64_t*>(storage_.get());
  const size_t n = bytes_ / sizeof(uint64_t), per_matrix = kMatrixBytes / sizeof(uint64_t);
  // As the matmul: each matrix's rows in 8 items per thread, claimed by whichever thread is free
  // (a thread the OS delays reads fewer), every thread done before the next matrix.
  const int64_t items = static_cast<int64_t>(pool_.size()) * 8;
  const size_t per_item = per_matrix / static_cast<size_t>(items) / 8 * 8;
  for (size_t m = 0; m < n; m += per_matrix) {
    const uint64_t* rows = buf + m;
    pool_.for_each_claimed(items, [&](int64_t it) {
      const size_t b = per_item * static_cast<size_t>(it), e = it == items - 1 ? per_matrix : b + per_item;
      uint64_t s[8] = {};
      for (size_t i = b; i + 8 <= e; i += 8)
        for (int k = 0; k < 8; ++k) s[k] += rows[i + k];
      uint64_t t = 0;
      for (uint64_t x : s) t += x;
      item_sums_[static_cast<size_t>(it) * 8] += t;
    });
    if (after_matrix) after_matrix();
  }
}

namespace {
BandwidthSample sample_of(int threads, const std::vector<double>& gbs) {
  return {threads, median(gbs), *std::min_element(gbs.begin(), gbs.end()), *std::max_element(gbs.begin(), gbs.end()),
          static_cast<int>(gbs.size())};
}
}  // namespace

BandwidthSample measure_read_bandwidth(kernels::ThreadPool& pool, size_t bytes, int reps) {
  DecodeShapedReads reads(pool, bytes);
  reads.pass();  // warm: the pool's threads awake, the TLB
  std::vector<double> gbs;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    reads.pass();
    gbs.push_back(static_cast<double>(reads.bytes()) / seconds_since(t0) / 1e9);
  }
  return sample_of(pool.size(), gbs);
}

namespace {
// Ranks meeting as at an all-reduce: MPI polls while it waits, yielding the core between polls
// where ranks are as many as the cores or more (mpirun's mpi_yield_when_idle, which `up` and
// `bench` set then), so a waiting rank still takes its share of a core from the ranks reading.
class PollingBarrier {
 public:
  PollingBarrier(int parties, bool yield) : parties_(parties), yield_(yield) {}
  void arrive_and_wait() {
    const int gen = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == parties_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    while (generation_.load(std::memory_order_acquire) == gen)
      if (yield_) std::this_thread::yield();
  }

 private:
  const int parties_;
  const bool yield_;
  std::atomic<int> arrived_{0}, generation_{0};
};

// `ranks` ranks' pools of `threads` each, working together `reps` times after a warm one: each
// time starts on every rank at once and ends when the last is done, the rate all their work over
// that time (a rank the OS delays holds all back, as at an all-reduce). `setup(pool, meet)` runs
// on each rank and returns its pass, which returns its work (bytes, flops); `meet` waits for
// every rank, as an all-reduce does.
std::vector<double> ranks_together(
    int ranks, int threads, int reps,
    const std::function<std::function<double()>(kernels::ThreadPool&, const std::function<void()>&)>& setup) {
  std::barrier meet(ranks);
  const long cores = std::max(1l, sysconf(_SC_NPROCESSORS_ONLN));
  PollingBarrier layer(ranks, static_cast<long>(ranks) * threads >= cores);
  const std::function<void()> all_reduce = [&] { layer.arrive_and_wait(); };
  std::vector<Clock::time_point> start(static_cast<size_t>(ranks)), end(start);
  std::vector<double> work(static_cast<size_t>(ranks)), rates;
  std::vector<std::thread> rank_threads;
  for (int r = 0; r < ranks; ++r)
    rank_threads.emplace_back([&, r] {
      kernels::ThreadPool pool(threads);
      const std::function<double()> pass = setup(pool, all_reduce);
      for (int p = 0; p <= reps; ++p) {
        meet.arrive_and_wait();
        start[static_cast<size_t>(r)] = Clock::now();
        work[static_cast<size_t>(r)] = pass();
        end[static_cast<size_t>(r)] = Clock::now();
        meet.arrive_and_wait();
        if (r == 0 && p > 0) {
          const auto first = *std::min_element(start.begin(), start.end());
          const auto last = *std::max_element(end.begin(), end.end());
          double total = 0;
          for (double w : work) total += w;
          rates.push_back(total / std::chrono::duration<double>(last - first).count());
        }
      }
    });
  for (auto& t : rank_threads) t.join();
  return rates;
}

}  // namespace

BandwidthSample measure_ranks_read_bandwidth(int ranks, int threads, size_t bytes, int reps) {
  if (ranks <= 1) {
    kernels::ThreadPool pool(threads);
    return measure_read_bandwidth(pool, bytes, reps);
  }
  const size_t per_rank = std::max(bytes / static_cast<size_t>(ranks) / kMatrixBytes, size_t(1)) * kMatrixBytes;
  std::vector<double> gbs = ranks_together(ranks, threads, reps, [&](kernels::ThreadPool& pool, const auto& meet) {
    auto reads = std::make_shared<DecodeShapedReads>(pool, per_rank);
    return std::function<double()>([reads, &meet] {
      reads->pass(meet);
      return static_cast<double>(reads->bytes());
    });
  });
  for (double& g : gbs) g /= 1e9;
  return sample_of(threads, gbs);
}

namespace {

// The engine's matmul on a Q4_0 matrix of 1024 x 4096 (2.3 MB, in cache, packed as the engine
// packs it) times `tokens` tokens; run() does `calls` of them and returns their flops.
class MatmulWork {
 public:
  MatmulWork(kernels::ThreadPool& pool, int64_t tokens, int calls) : pool_(pool), tokens_(tokens), calls_(calls) {
    const size_t row_bytes = static_cast<size_t>(gguf::row_bytes(gguf::GgmlType::Q4_0, kCols));
    data_.resize(row_bytes * kRows);
    std::mt19937 rng(1);
    for (auto& b : data_) b = static_cast<uint8_t>(rng());
    // Every block's scale a small finite half (0.01): random bytes could be NaN.
    for (size_t off = 0; off < data_.size(); off += 18) data_[off] = 0x1f, data_[off + 1] = 0x21;
    w_ = {gguf::GgmlType::Q4_0, data_.data(), kRows, kCols, row_bytes, kernels::Layout::Rows};
    if (kernels::should_pack(w_)) {
      packed_.resize(kernels::packed_bytes(w_));
      w_ = kernels::pack_rows8(w_, packed_.data());
    }
    x_.resize(kCols * tokens);
    y_.resize(kRows * tokens);
    for (auto& v : x_) v = std::uniform_real_distribution<float>(-1, 1)(rng);
    kernels::matmul(w_, x_.data(), tokens_, y_.data(), pool_, ws_);
  }
  double run() {
    for (int k = 0; k < calls_; ++k) kernels::matmul(w_, x_.data(), tokens_, y_.data(), pool_, ws_);
    return calls_ * 2.0 * kRows * kCols * tokens_;
  }

 private:
  static constexpr int64_t kRows = 1024, kCols = 4096;
  kernels::ThreadPool& pool_;
  const int64_t tokens_;
  const int calls_;
  std::vector<uint8_t> data_, packed_;
  kernels::Matrix w_{};
  std::vector<float> x_, y_;
  kernels::Workspace ws_;
};

double matmul_gflops(kernels::ThreadPool& pool, int64_t tokens, int calls_per_rep, int reps) {
  MatmulWork work(pool, tokens, calls_per_rep);
  std::vector<double> gflops;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    const double flops = work.run();
    gflops.push_back(flops / seconds_since(t0) / 1e9);
  }
  return median(gflops);
}

// The same on `ranks` ranks' pools together (ranks_together): all their flops over the time
// until the last is done.
double ranks_matmul_gflops(int ranks, int threads, int64_t tokens, int calls_per_rep, int reps) {
  return median(ranks_together(ranks, threads, reps,
                               [&](kernels::ThreadPool& pool, const auto&) {
                                 auto work = std::make_shared<MatmulWork>(pool, tokens, calls_per_rep);
                                 return std::function<double()>([work] { return work->run(); });
                               })) /
         1e9;
}

}  // namespace

double measure_compute_gflops(kernels::ThreadPool& pool, int reps) { return matmul_gflops(pool, 64, 4, reps); }

double measure_decode_gflops(kernels::ThreadPool& pool, int reps) { return matmul_gflops(pool, 1, 128, reps); }

double measure_meeting_us(kernels::ThreadPool& pool, int reps) {
  if (pool.size() <= 1) return 0;  // a pool of one runs its work inline
  constexpr int kCalls = 2000;
  std::atomic<int64_t> seen{0};
  const int64_t items = static_cast<int64_t>(pool.size()) * 8;  // as many as a matmul's rows are cut into
  std::vector<double> us;
  for (int r = 0; r <= reps; ++r) {
    auto t0 = Clock::now();
    for (int c = 0; c < kCalls; ++c)
      pool.for_each_claimed(items, [&](int64_t i) { seen.fetch_add(i, std::memory_order_relaxed); });
    if (r > 0) us.push_back(seconds_since(t0) / kCalls * 1e6);  // the first wakes the threads
  }
  return median(us);
}

std::string probe_method(size_t bytes, int reps) {
  return bandwidth_method(bytes, reps) +
         "; compute: Q4_0 1024x4096 matmul x 64 tokens in cache, decode compute: the same x 1 token";
}

std::string bandwidth_method(size_t bytes, int reps) {
  return "decode-shaped reads of " + std::to_string(bytes >> 20) +
         " MiB in 4 MiB matrices, rows claimed by the threads 8 items each as the matmul, median of " +
         std::to_string(reps) + " passes";
}

}  // namespace clusterctl::tools

namespace clusterctl::tools {

int probe_speed_main(int threads, int ranks) {
  if (threads <= 0) threads = static_cast<int>(std::max(1l, sysconf(_SC_NPROCESSORS_ONLN)));
  ranks = std::max(ranks, 1);
  const size_t bytes = probe_buffer_bytes();
  constexpr int kReps = 5;
  std::string out =
      "{\"threads\": " + std::to_string(threads) + ", \"ranks\": " + std::to_string(ranks) + ", \"bandwidth\": [";
  double at_threads = 0;
  for (int t = 1;; t = std::min(t * 2, threads)) {
    kernels::ThreadPool pool(t);
    const BandwidthSample s = measure_read_bandwidth(pool, bytes, kReps);
    char line[160];
    std::snprintf(line, sizeof line,
                  "%s{\"threads\": %d, \"median_gb_s\": %.3f, \"min_gb_s\": %.3f, \"max_gb_s\": %.3f}",
                  t == 1 ? "" : ", ", t, s.median_gbs, s.min_gbs, s.max_gbs);
    out += line;
    at_threads = s.median_gbs;
    if (t == threads) break;
  }
  // One rank's pool alone (the others idle, as while rank 0 drafts): what a draft model gets.
  const double one_rank_gbs = at_threads;
  kernels::ThreadPool one_pool(threads);
  const double one_rank_decode = measure_decode_gflops(one_pool, kReps);
  const double meeting_us = measure_meeting_us(one_pool, kReps);
  if (ranks > 1) at_threads = measure_ranks_read_bandwidth(ranks, threads, bytes, kReps).median_gbs;
  // Compute as the ranks multiply: their own pools together, not one pool of all their threads
  // (whose barriers, with more threads than cores, would wait on descheduled threads).
  const double compute = ranks_matmul_gflops(ranks, threads, 64, 4, kReps);
  const double decode = ranks_matmul_gflops(ranks, threads, 1, 128, kReps);
  char tail[320];
  std::snprintf(tail, sizeof tail,
                "], \"bandwidth_gb_s\": %.3f, \"compute_gflops\": %.3f, \"decode_gflops\": %.3f, "
                "\"meeting_us\": %.3f, \"one_rank\": {\"bandwidth_gb_s\": %.3f, \"decode_gflops\": %.3f}, ",
                at_threads, compute, decode, meeting_us, one_rank_gbs, one_rank_decode);
  out += tail;
  out += "\"method\": \"" + probe_method(bytes, kReps) +
         (ranks > 1 ? "; the node's figure: " + std::to_string(ranks) + " ranks' pools of " + std::to_string(threads) +
                          " threads, every pass started together and the ranks meeting after each matrix as at "
                          "an all-reduce: all their bytes over the time until the last was done"
                    : std::string()) +
         "\"}";
  std::printf("%s\n", out.c_str());
  return 0;
}

}  // namespace clusterctl::tools
