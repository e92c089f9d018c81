#include "worker/tools/speed_probe.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iterator>
#include <latch>
#include <memory>
#include <random>
#include <thread>

#include "worker/common/large_buffer.h"
#include "worker/kernels/kernels.h"
#include "worker/tools/handover_probe.h"
#include "worker/tools/vector_work_probe.h"

namespace clusterctl::tools {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr size_t kMatrixBytes = size_t(4) << 20;
constexpr size_t kRatioBytes = size_t(256) << 20;  // each stream of measure_stream_ratios

}  // namespace

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

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

constexpr int64_t kStreamCols = 4096;

// A Q4_0 matrix of random weights, every block's scale a small finite half (0.01: random bytes
// could be NaN), in GGUF's row layout.
std::vector<uint8_t> random_q4_0(int64_t rows, int64_t cols, std::mt19937& rng) {
  const size_t row_bytes = static_cast<size_t>(gguf::row_bytes(gguf::GgmlType::Q4_0, cols));
  std::vector<uint8_t> data(row_bytes * static_cast<size_t>(rows));
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  for (size_t off = 0; off < data.size(); off += 18) data[off] = 0x1f, data[off + 1] = 0x21;
  return data;
}

// `data` as a matrix of `type` in GGUF's row layout.
kernels::Matrix rows_matrix(gguf::GgmlType type, const std::vector<uint8_t>& data, int64_t rows, int64_t cols) {
  return {type, data.data(), rows, cols, data.size() / static_cast<size_t>(rows), kernels::Layout::Rows};
}

// Another type's: kernels::random_weight_rows.
std::vector<uint8_t> random_rows(gguf::GgmlType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  if (type == gguf::GgmlType::Q4_0) return random_q4_0(rows, cols, rng);
  return kernels::random_weight_rows(type, rows, cols, static_cast<uint32_t>(rng()));
}

}  // namespace

DecodeStream::DecodeStream(kernels::ThreadPool& pool, size_t bytes, int64_t tokens, int64_t rows_each,
                           gguf::GgmlType type)
    : pool_(pool), tokens_(std::max<int64_t>(tokens, 1)) {
  // ~4 MiB of the type's rows unless told, whole groups of 16.
  const int64_t type_rows =
      static_cast<int64_t>(kMatrixBytes / gguf::row_bytes(type, static_cast<uint64_t>(kStreamCols))) / 16 * 16;
  const int64_t n_rows = rows_each > 0 ? rows_each : type_rows;
  std::mt19937 rng(2);
  const std::vector<uint8_t> source = random_rows(type, n_rows, kStreamCols, rng);
  const kernels::Matrix rows = rows_matrix(type, source, n_rows, kStreamCols);
  const bool pack = kernels::should_pack(rows);
  const size_t each = pack ? kernels::packed_bytes(rows) : source.size();
  const size_t n = std::max(bytes / each, size_t(1));
  storage_ = allocate_large_buffer(n * each);  // on huge pages, as the engine's packed weights
  kernels::Matrix first = pack ? kernels::pack_rows8(rows, storage_.get()) : rows;
  if (!pack) std::copy(source.begin(), source.end(), storage_.get());
  // Copies of the first by the pool's threads (their NUMA node), every page mapped before timing.
  pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) {
    for (int64_t i = std::max<int64_t>(b, 1); i < e; ++i)
      std::memcpy(storage_.get() + static_cast<size_t>(i) * each, storage_.get(), each);
  });
  for (size_t i = 0; i < n; ++i) {
    kernels::Matrix m = first;
    m.data = storage_.get() + i * each;
    matrices_.push_back(m);
  }
  bytes_ = n * each;
  flops_ = 2.0 * static_cast<double>(n) * static_cast<double>(n_rows) * kStreamCols * static_cast<double>(tokens_);
  std::uniform_real_distribution<float> u(-1, 1);
  x_.resize(static_cast<size_t>(kStreamCols * tokens_));
  for (auto& v : x_) v = u(rng);
  y_.resize(static_cast<size_t>(n_rows * tokens_));
}

DecodeStream::~DecodeStream() = default;

void DecodeStream::pass(const std::function<void()>& after_matrix) {
  for (const kernels::Matrix& m : matrices_) {
    kernels::matmul(m, x_.data(), tokens_, y_.data(), pool_, ws_,
                    tokens_ == 1 ? kernels::Kernels::MatrixVector : kernels::Kernels::Tiles);
    if (after_matrix) after_matrix();
  }
}

namespace {
BandwidthSample sample_of(int threads, const std::vector<double>& gbs) {
  return {threads, median(gbs), *std::min_element(gbs.begin(), gbs.end()), *std::max_element(gbs.begin(), gbs.end()),
          static_cast<int>(gbs.size())};
}
}  // namespace

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

namespace {

// One pool's passes over its buffer (DecodeShapedReads or DecodeStream): the median, slowest and
// fastest GB/s of `reps` after a warm one.
template <class Passes>
BandwidthSample pool_passes(kernels::ThreadPool& pool, size_t bytes, int reps) {
  Passes passes(pool, bytes);
  passes.pass();  // warm: the pool's threads awake, the TLB
  std::vector<double> gbs;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    passes.pass();
    gbs.push_back(static_cast<double>(passes.bytes()) / seconds_since(t0) / 1e9);
  }
  return sample_of(pool.size(), gbs);
}

// `ranks` ranks' pools, each over its bytes / ranks, meeting after each matrix (ranks_together).
template <class Passes>
BandwidthSample ranks_passes(int ranks, int threads, size_t bytes, int reps) {
  if (ranks <= 1) {
    kernels::ThreadPool pool(threads);
    return pool_passes<Passes>(pool, bytes, reps);
  }
  const size_t per_rank = std::max(bytes / static_cast<size_t>(ranks) / kMatrixBytes, size_t(1)) * kMatrixBytes;
  std::vector<double> gbs = ranks_together(ranks, threads, reps, [&](kernels::ThreadPool& pool, const auto& meet) {
    auto passes = std::make_shared<Passes>(pool, per_rank);
    return std::function<double()>([passes, &meet] {
      passes->pass(meet);
      return static_cast<double>(passes->bytes());
    });
  });
  for (double& g : gbs) g /= 1e9;
  return sample_of(threads, gbs);
}

}  // namespace

BandwidthSample measure_read_bandwidth(kernels::ThreadPool& pool, size_t bytes, int reps) {
  return pool_passes<DecodeShapedReads>(pool, bytes, reps);
}

BandwidthSample measure_ranks_read_bandwidth(int ranks, int threads, size_t bytes, int reps) {
  return ranks_passes<DecodeShapedReads>(ranks, threads, bytes, reps);
}

BandwidthSample measure_decode_stream(kernels::ThreadPool& pool, size_t bytes, int reps) {
  return pool_passes<DecodeStream>(pool, bytes, reps);
}

BandwidthSample measure_ranks_decode_stream(int ranks, int threads, size_t bytes, int reps) {
  return ranks_passes<DecodeStream>(ranks, threads, bytes, reps);
}

namespace {
struct EightTokenStream : DecodeStream {
  EightTokenStream(kernels::ThreadPool& pool, size_t bytes) : DecodeStream(pool, bytes, 8) {}
};
}  // namespace

double measure_ranks_tile8_stream_gflops(int ranks, int threads, size_t bytes, int reps) {
  return ranks_passes<EightTokenStream>(ranks, threads, bytes, reps).median_gbs * decode_stream_flops_per_byte() * 8;
}

double decode_stream_flops_per_byte() {
  kernels::ThreadPool pool(1);
  const DecodeStream one(pool, 1);  // one matrix
  return one.flops() / static_cast<double>(one.bytes());
}

namespace {

// The engine's matmul on a Q4_0 matrix of 1024 x 4096 (2.3 MB, in cache, packed as the engine
// packs it) times `tokens` tokens; run() does as many calls as take `rep_seconds` (counted when
// made: a rep of a few milliseconds measured the scheduler's time slices, not the kernels, where
// ranks outnumber cores) and returns their flops. With a `chunk`, the row-parallel matmul that sums
// in chunks of that many columns (attn_output's and ffn_down's, kernels::matmul_row_parallel).
class MatmulWork {
 public:
  MatmulWork(kernels::ThreadPool& pool, int64_t tokens, double rep_seconds, int64_t chunk = 0)
      : pool_(pool), tokens_(tokens), chunk_(chunk) {
    std::mt19937 rng(1);
    data_ = random_q4_0(kRows, kCols, rng);
    w_ = rows_matrix(gguf::GgmlType::Q4_0, data_, kRows, kCols);
    if (kernels::should_pack(w_)) {
      packed_.resize(kernels::packed_bytes(w_));
      w_ = kernels::pack_rows8(w_, packed_.data());
    }
    x_.resize(kCols * tokens);
    y_.resize(kRows * tokens);
    if (chunk_ > 0) sums_.resize(kRows * tokens);
    for (auto& v : x_) v = std::uniform_real_distribution<float>(-1, 1)(rng);
    call();
    for (calls_ = 1; calls_ < (1 << 20); calls_ *= 2) {
      auto t0 = Clock::now();
      run();
      if (seconds_since(t0) >= rep_seconds / 2) break;
    }
    calls_ *= 2;
  }
  double run() {
    for (int k = 0; k < calls_; ++k) call();
    return calls_ * 2.0 * kRows * kCols * tokens_;
  }

 private:
  void call() {
    if (chunk_ > 0)
      kernels::matmul_row_parallel(w_, chunk_, x_.data(), tokens_, sums_.data(), pool_, ws_);
    else
      kernels::matmul(w_, x_.data(), tokens_, y_.data(), pool_, ws_);
  }
  static constexpr int64_t kRows = 1024, kCols = 4096;
  kernels::ThreadPool& pool_;
  const int64_t tokens_, chunk_;
  int calls_ = 1;
  std::vector<uint8_t> data_, packed_;
  kernels::Matrix w_{};
  std::vector<float> x_, y_;
  std::vector<double> sums_;
  kernels::Workspace ws_;
};

// A prompt's tiles in reps of ~200 ms: on this project's VM five probes' compute read 249-264
// GFLOPS with them, 227-300 with reps of ~30 ms, interleaved (the machine speeds up and slows down
// for fractions of a second, and a prompt of 64 tokens takes ~0.7 s). The matrix-vector rate (a
// decode's, mostly hidden under its reads) and a ratio of neighbouring runs keep reps of ~30 ms.
constexpr double kPromptRepSeconds = 0.2, kRepSeconds = 0.03;
double rep_seconds(int64_t tokens) { return tokens > 1 ? kPromptRepSeconds : kRepSeconds; }

double matmul_gflops(kernels::ThreadPool& pool, int64_t tokens, int reps) {
  MatmulWork work(pool, tokens, rep_seconds(tokens));
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
double ranks_matmul_gflops(int ranks, int threads, int64_t tokens, int reps) {
  return median(ranks_together(ranks, threads, reps,
                               [&](kernels::ThreadPool& pool, const auto&) {
                                 auto work = std::make_shared<MatmulWork>(pool, tokens, rep_seconds(tokens));
                                 return std::function<double()>([work] { return work->run(); });
                               })) /
         1e9;
}

}  // namespace

double measure_compute_gflops(kernels::ThreadPool& pool, int reps) { return matmul_gflops(pool, 64, reps); }

RowParallelSlowdown measure_row_parallel_slowdown(kernels::ThreadPool& pool, int64_t tokens, int reps) {
  MatmulWork plain(pool, tokens, kRepSeconds);
  std::vector<std::unique_ptr<MatmulWork>> chunked;
  for (int64_t chunk : kRowParallelProbeChunks)
    chunked.push_back(std::make_unique<MatmulWork>(pool, tokens, kRepSeconds, chunk));
  auto seconds_per_flop = [](MatmulWork& w) {
    auto t0 = Clock::now();
    const double flops = w.run();
    return seconds_since(t0) / flops;
  };
  // Each repetition times the plain matmul right before the chunked ones: a ratio of neighbours,
  // which the machine's slower and faster states (this project's VM's differ ~40 %) leave alone.
  std::vector<double> ratios[std::size(kRowParallelProbeChunks)];
  for (int r = 0; r < reps; ++r) {
    const double base = seconds_per_flop(plain);
    for (size_t i = 0; i < chunked.size(); ++i) ratios[i].push_back(seconds_per_flop(*chunked[i]) / base);
  }
  RowParallelSlowdown s;
  for (size_t i = 0; i < chunked.size(); ++i) s.ratio[i] = median(ratios[i]);
  return s;
}

double at_least_one_ranks(double one_rank, const std::function<double()>& measure) {
  double best = measure();
  for (int again = 0; again < 2 && best < one_rank; ++again) best = std::max(best, measure());
  return best;
}

double measure_decode_gflops(kernels::ThreadPool& pool, int reps) { return matmul_gflops(pool, 1, reps); }

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

double measure_prompt_meeting_us(kernels::ThreadPool& pool, int reps) {
  constexpr size_t kBytes = size_t(256) << 20;
  DecodeStream large(pool, kBytes, 8), small(pool, kBytes, 8, kPromptMeetingRows);
  auto seconds_per_flop = [](DecodeStream& s) {
    auto t0 = Clock::now();
    s.pass();
    return seconds_since(t0) / s.flops();
  };
  seconds_per_flop(large), seconds_per_flop(small);  // warm: the threads awake, the TLB
  // Each pair's small matrices against the large ones timed right before them (the VM's faster
  // and slower states leave neighbours alike), their difference over the same flops; twice `reps`
  // pairs, since the difference is a small share of either.
  const double more_matrices =
      static_cast<double>(small.matrices()) - static_cast<double>(large.matrices()) * small.flops() / large.flops();
  std::vector<double> us;
  for (int r = 0; r < 2 * reps; ++r) {
    const double base = seconds_per_flop(large), each = seconds_per_flop(small);
    us.push_back((each - base) * small.flops() / more_matrices * 1e6);
  }
  return std::max(median(us), 0.0);
}

std::vector<StreamRatio> measure_stream_ratios(kernels::ThreadPool& pool, size_t bytes, int reps) {
  DecodeStream q4_0(pool, bytes);
  auto gbs = [](DecodeStream& s) {
    auto t0 = Clock::now();
    s.pass();
    return static_cast<double>(s.bytes()) / seconds_since(t0);
  };
  gbs(q4_0);  // warm: the threads awake, the TLB
  std::vector<StreamRatio> out;
  for (const gguf::GgmlType type : kStreamRatioTypes) {
    DecodeStream other(pool, bytes, 1, 0, type);
    gbs(other);
    std::vector<double> ratios;
    for (int r = 0; r < reps; ++r) {
      const double base = gbs(q4_0);
      ratios.push_back(gbs(other) / base);
    }
    out.push_back({type, median(ratios)});
  }
  return out;
}

std::string probe_method(size_t bytes, int reps) {
  return "decode stream: the engine's matrix-vector kernels (1 token) over " + std::to_string(bytes >> 20) +
         " MiB of packed Q4_0 4096-column matrices of ~4 MiB, the pool meeting after each, median of " +
         std::to_string(reps) + " passes after a warm one, per thread count; " + bandwidth_method(bytes, reps) +
         "; compute: Q4_0 1024x4096 matmul in cache x 64 tokens, decode compute: the same x 1 token, median of " +
         std::to_string(reps) +
         " reps of ~200 ms (~30 ms at 1 token); 8-token tiles: the decode stream's matrices (256 MiB at most) x 8 "
         "tokens, median of " +
         std::to_string(reps) + " passes; row-parallel slowdown: the compute matmul summing in chunks of " +
         std::to_string(kRowParallelProbeChunks[0]) + " and " + std::to_string(kRowParallelProbeChunks[1]) +
         " columns against the plain one timed right before it, median of " + std::to_string(reps) +
         " ratios, at 64 tokens and at 1 (decode); a small prompt matmul's cost beyond its flops: 8-token tiles over "
         "256 MiB in matrices of " +
         std::to_string(kPromptMeetingRows) +
         " rows against the same bytes in ~4 MiB matrices timed right before them, over the difference in their "
         "counts, median of " +
         std::to_string(2 * reps) + " pairs; stream ratios: each type's decode stream over " +
         std::to_string(std::min(bytes, kRatioBytes) >> 20) + " MiB against Q4_0's timed right before it, median of " +
         std::to_string(reps) + " pairs";
}

std::string bandwidth_method(size_t bytes, int reps) {
  return "decode-shaped reads of " + std::to_string(bytes >> 20) +
         " MiB in 4 MiB matrices, rows claimed by the threads 8 items each as the matmul, median of " +
         std::to_string(reps) + " passes";
}

}  // namespace clusterctl::tools

namespace clusterctl::tools {
namespace {

std::string sample_json(const BandwidthSample& s) {
  char line[160];
  std::snprintf(line, sizeof line, "{\"threads\": %d, \"median_gb_s\": %.3f, \"min_gb_s\": %.3f, \"max_gb_s\": %.3f}",
                s.threads, s.median_gbs, s.min_gbs, s.max_gbs);
  return line;
}

// The decode stream alone, as the full probe measures it: one pool of `threads`, then the ranks'
// pools together (again while below the one pool's).
int probe_stream_only(int threads, int ranks, size_t bytes, int reps) {
  kernels::ThreadPool pool(threads);
  const double one_rank = measure_decode_stream(pool, bytes, reps).median_gbs;
  const double together =
      ranks > 1 ? at_least_one_ranks(
                      one_rank, [&] { return measure_ranks_decode_stream(ranks, threads, bytes, reps).median_gbs; })
                : one_rank;
  const std::string method = "decode stream only: the engine's matrix-vector kernels (1 token) over " +
                             std::to_string(bytes >> 20) +
                             " MiB of packed Q4_0 4096-column matrices of ~4 MiB, median of " + std::to_string(reps) +
                             " passes, one pool of " + std::to_string(threads) + " thread(s)" +
                             (ranks > 1 ? ", then " + std::to_string(ranks) + " ranks' pools together" : "");
  std::printf(
      "{\"threads\": %d, \"ranks\": %d, \"stream_gb_s\": %.3f, \"one_rank\": {\"stream_gb_s\": %.3f}, "
      "\"method\": \"%s\"}\n",
      threads, ranks, together, one_rank, method.c_str());
  return 0;
}

}  // namespace

int probe_speed_main(int threads, int ranks, bool stream_only) {
  if (threads <= 0) threads = static_cast<int>(std::max(1l, sysconf(_SC_NPROCESSORS_ONLN)));
  ranks = std::max(ranks, 1);
  const size_t bytes = probe_buffer_bytes();
  constexpr int kReps = 7;
  if (stream_only) return probe_stream_only(threads, ranks, bytes, kReps);
  // First, while this process has no pool's threads to fork beside: the machine's cores handed
  // over among ranks that outnumber them (plan adds it only where they do).
  constexpr int kHandoverSteps = 200, kHandoverReps = 15;  // a mean of two modes: more repetitions (~5 s)
  const HandoverProbe handover = measure_handover(0, kHandoverReps, kHandoverSteps);
  std::string handover_json;
  for (const HandoverSample& h : handover.samples) {
    char one[160];
    std::snprintf(one, sizeof one, "%s{\"ranks\": %d, \"step_us\": %.1f, \"turns_us\": %.1f, \"handover_us\": %.1f}",
                  handover_json.empty() ? "" : ", ", h.ranks, h.step_us, h.turns_us, h.handover_us);
    handover_json += one;
  }
  // Per thread count 1, 2, 4 ... threads: the plain reads and the decode stream, one pool alone.
  std::string reads_json, stream_json;
  double reads_gbs = 0, stream_gbs = 0;
  for (int t = 1;; t = std::min(t * 2, threads)) {
    kernels::ThreadPool pool(t);
    const BandwidthSample r = measure_read_bandwidth(pool, bytes, kReps);
    const BandwidthSample d = measure_decode_stream(pool, bytes, kReps);
    reads_json += (t == 1 ? "" : ", ") + sample_json(r);
    stream_json += (t == 1 ? "" : ", ") + sample_json(d);
    reads_gbs = r.median_gbs, stream_gbs = d.median_gbs;
    if (t == threads) break;
  }
  // One rank's pool alone (the others idle, as while rank 0 drafts): what a draft model gets.
  const double one_rank_reads = reads_gbs, one_rank_stream = stream_gbs;
  kernels::ThreadPool one_pool(threads);
  const double one_rank_decode = measure_decode_gflops(one_pool, kReps);
  const double meeting_us = measure_meeting_us(one_pool, kReps);
  const double prompt_meeting_us = measure_prompt_meeting_us(one_pool, kReps);
  // A pass's attention and element-wise loops: one rank's pool, each thread at its own copy.
  const VectorWorkRates vector_work = measure_vector_work(one_pool, kReps);
  const RowParallelSlowdown row_parallel = measure_row_parallel_slowdown(one_pool, 64, kReps);
  const RowParallelSlowdown row_parallel_decode = measure_row_parallel_slowdown(one_pool, 1, kReps);
  const std::vector<StreamRatio> stream_ratios = measure_stream_ratios(one_pool, std::min(bytes, kRatioBytes), kReps);
  if (ranks > 1) {
    reads_gbs = at_least_one_ranks(
        one_rank_reads, [&] { return measure_ranks_read_bandwidth(ranks, threads, bytes, kReps).median_gbs; });
    stream_gbs = at_least_one_ranks(
        one_rank_stream, [&] { return measure_ranks_decode_stream(ranks, threads, bytes, kReps).median_gbs; });
  }
  // Compute as the ranks multiply: their own pools together, not one pool of all their threads
  // (whose barriers, with more threads than cores, would wait on descheduled threads).
  const double compute = ranks_matmul_gflops(ranks, threads, 64, kReps);
  // A mixture of experts' prompt: each expert's ~8 tokens over its weights from memory, where the
  // tile's work and the reads do not overlap as a dense prompt's 64-token tiles hide them.
  const double tile8 = measure_ranks_tile8_stream_gflops(ranks, threads, std::min(bytes, size_t(256) << 20), kReps);
  const double decode = ranks_matmul_gflops(ranks, threads, 1, kReps);
  char tail[640];
  std::snprintf(tail, sizeof tail,
                "\"bandwidth_gb_s\": %.3f, \"stream_gb_s\": %.3f, \"stream_flops_per_byte\": %.4f, "
                "\"compute_gflops\": %.3f, \"tile8_gflops\": %.3f, \"decode_gflops\": %.3f, \"meeting_us\": %.3f, "
                "\"prompt_meeting_us\": %.3f, \"one_rank\": {\"bandwidth_gb_s\": %.3f, \"stream_gb_s\": %.3f, "
                "\"decode_gflops\": %.3f}, ",
                reads_gbs, stream_gbs, decode_stream_flops_per_byte(), compute, tile8, decode, meeting_us,
                prompt_meeting_us, one_rank_reads, one_rank_stream, one_rank_decode);
  char vector_json[320];
  std::snprintf(vector_json, sizeof vector_json,
                "\"attention_head_ns\": [%.3f, %.3f], \"attention_position_ns\": [%.4f, %.4f], \"silu_ns\": %.4f, "
                "\"norm_ns\": %.4f, ",
                vector_work.attention_head_ns[0], vector_work.attention_head_ns[1],
                vector_work.attention_position_ns[0], vector_work.attention_position_ns[1], vector_work.silu_ns,
                vector_work.norm_ns);
  char row_parallel_json[192];
  std::snprintf(row_parallel_json, sizeof row_parallel_json,
                "\"row_parallel\": {\"chunks\": [%lld, %lld], \"slowdown\": [%.4f, %.4f], "
                "\"decode_slowdown\": [%.4f, %.4f]}, ",
                static_cast<long long>(kRowParallelProbeChunks[0]), static_cast<long long>(kRowParallelProbeChunks[1]),
                row_parallel.ratio[0], row_parallel.ratio[1], row_parallel_decode.ratio[0],
                row_parallel_decode.ratio[1]);
  std::string ratios_json;
  for (const StreamRatio& r : stream_ratios) {
    char one[64];
    std::snprintf(one, sizeof one, "%s\"%s\": %.4f", ratios_json.empty() ? "" : ", ",
                  std::string(gguf::type_name(r.type)).c_str(), r.ratio);
    ratios_json += one;
  }
  char handover_head[128];
  std::snprintf(handover_head, sizeof handover_head, "\"handover_us\": [%.2f, %.2f], \"handover_chunk_us\": %.1f, ",
                handover.handover_us[0], handover.handover_us[1], handover.chunk_us);
  std::string out = "{\"threads\": " + std::to_string(threads) + ", \"ranks\": " + std::to_string(ranks) +
                    ", \"bandwidth\": [" + reads_json + "], \"stream\": [" + stream_json + "], " + tail + vector_json +
                    row_parallel_json + "\"stream_ratios\": {" + ratios_json + "}, " + handover_head +
                    "\"handover\": [" + handover_json + "], ";
  out += "\"method\": \"" + probe_method(bytes, kReps) + "; " + vector_work_method(kReps) + "; " +
         handover_method(handover, kHandoverReps, kHandoverSteps) +
         (ranks > 1 ? "; the node's figures: " + std::to_string(ranks) + " ranks' pools of " + std::to_string(threads) +
                          " threads, every pass started together and the ranks meeting after each matrix as at "
                          "an all-reduce: all their bytes (flops) over the time until the last was done, measured "
                          "again (twice at most) while below one rank's alone"
                    : std::string()) +
         "\"}";
  std::printf("%s\n", out.c_str());
  return 0;
}

}  // namespace clusterctl::tools
