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
}  // namespace

BandwidthSample measure_ranks_read_bandwidth(int ranks, int threads, size_t bytes, int reps) {
  if (ranks <= 1) {
    kernels::ThreadPool pool(threads);
    return measure_read_bandwidth(pool, bytes, reps);
  }
  const size_t per_rank = std::max(bytes / static_cast<size_t>(ranks) / kMatrixBytes, size_t(1)) * kMatrixBytes;
  // Pass 0 warms; then `reps` timed passes. Each pass starts when every rank has arrived (so no
  // rank reads alone while another still maps its buffer or finishes the pass before), and ends
  // when the last rank is done, as a decode step ends at its last all-reduce.
  std::barrier meet(ranks);
  const long cores = std::max(1l, sysconf(_SC_NPROCESSORS_ONLN));
  PollingBarrier layer(ranks, static_cast<long>(ranks) * threads >= cores);
  const std::function<void()> all_reduce = [&] { layer.arrive_and_wait(); };
  std::vector<Clock::time_point> start(static_cast<size_t>(ranks)), end(start);
  std::vector<double> gbs;
  std::vector<std::thread> rank_threads;
  for (int r = 0; r < ranks; ++r)
    rank_threads.emplace_back([&, r] {
      kernels::ThreadPool pool(threads);
      DecodeShapedReads reads(pool, per_rank);
      for (int p = 0; p <= reps; ++p) {
        meet.arrive_and_wait();
        start[static_cast<size_t>(r)] = Clock::now();
        reads.pass(all_reduce);
        end[static_cast<size_t>(r)] = Clock::now();
        meet.arrive_and_wait();
        if (r == 0 && p > 0) {
          const auto first = *std::min_element(start.begin(), start.end());
          const auto last = *std::max_element(end.begin(), end.end());
          gbs.push_back(static_cast<double>(per_rank) * ranks / std::chrono::duration<double>(last - first).count() /
                        1e9);
        }
      }
    });
  for (auto& t : rank_threads) t.join();
  return sample_of(threads, gbs);
}

namespace {

// Multiply-adds per second (x2) of the engine's matmul on a Q4_0 matrix of 1024 x 4096 (2.3 MB,
// in cache, packed as the engine packs it) times `tokens` tokens.
double matmul_gflops(kernels::ThreadPool& pool, int64_t tokens, int calls_per_rep, int reps) {
  constexpr int64_t rows = 1024, cols = 4096;
  const size_t row_bytes = static_cast<size_t>(gguf::row_bytes(gguf::GgmlType::Q4_0, cols));
  std::vector<uint8_t> data(row_bytes * rows);
  std::mt19937 rng(1);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  // Every block's scale a small finite half (0.01): random bytes could be NaN.
  for (size_t off = 0; off < data.size(); off += 18) data[off] = 0x1f, data[off + 1] = 0x21;
  kernels::Matrix w{gguf::GgmlType::Q4_0, data.data(), rows, cols, row_bytes, kernels::Layout::Rows};
  std::vector<uint8_t> packed;
  if (kernels::should_pack(w)) {
    packed.resize(kernels::packed_bytes(w));
    w = kernels::pack_rows8(w, packed.data());
  }
  std::vector<float> x(cols * tokens), y(rows * tokens);
  for (auto& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
  kernels::Workspace ws;
  kernels::matmul(w, x.data(), tokens, y.data(), pool, ws);
  std::vector<double> gflops;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    for (int k = 0; k < calls_per_rep; ++k) kernels::matmul(w, x.data(), tokens, y.data(), pool, ws);
    gflops.push_back(calls_per_rep * 2.0 * rows * cols * tokens / seconds_since(t0) / 1e9);
  }
  return median(gflops);
}

}  // namespace

double measure_compute_gflops(kernels::ThreadPool& pool, int reps) { return matmul_gflops(pool, 64, 4, reps); }

double measure_decode_gflops(kernels::ThreadPool& pool, int reps) { return matmul_gflops(pool, 1, 128, reps); }

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

// The node as a job uses it: `ranks` processes' pools of `threads` each, measuring at once with
// their own barriers (a rank waits only for its own threads); the sum of their figures.
template <typename Measure>
double concurrent_ranks(int ranks, int threads, Measure&& measure) {
  std::vector<double> figure(static_cast<size_t>(ranks));
  std::vector<std::thread> rank_threads;
  std::latch start(ranks);
  for (int r = 0; r < ranks; ++r)
    rank_threads.emplace_back([&, r] {
      kernels::ThreadPool pool(threads);
      start.arrive_and_wait();
      figure[static_cast<size_t>(r)] = measure(pool);
    });
  for (auto& t : rank_threads) t.join();
  double total = 0;
  for (double g : figure) total += g;
  return total;
}

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
  if (ranks > 1) at_threads = measure_ranks_read_bandwidth(ranks, threads, bytes, kReps).median_gbs;
  // Compute as the ranks multiply: their own pools at once, not one pool of all their threads
  // (whose barriers, with more threads than cores, would wait on descheduled threads).
  const double compute =
      concurrent_ranks(ranks, threads, [&](kernels::ThreadPool& pool) { return measure_compute_gflops(pool, kReps); });
  const double decode =
      concurrent_ranks(ranks, threads, [&](kernels::ThreadPool& pool) { return measure_decode_gflops(pool, kReps); });
  char tail[256];
  std::snprintf(tail, sizeof tail,
                "], \"bandwidth_gb_s\": %.3f, \"compute_gflops\": %.3f, \"decode_gflops\": %.3f, "
                "\"one_rank\": {\"bandwidth_gb_s\": %.3f, \"decode_gflops\": %.3f}, ",
                at_threads, compute, decode, one_rank_gbs, one_rank_decode);
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
