#pragma once
// What one machine's cores achieve on the two things a forward pass does, measured as the engine
// does them: streaming weight rows from memory (decode) and multiply-adds on weights in cache
// (prompts). `bench` takes its bandwidth bound from here and `doctor` records both per node
// for `plan`'s predictions.
#include <functional>
#include <string>
#include <vector>

#include "worker/common/large_buffer.h"
#include "worker/kernels/blocks.h"  // kernels.h uses fp16_t without including it
#include "worker/kernels/kernels.h"
#include "worker/kernels/thread_pool.h"

namespace clusterctl::tools {

struct BandwidthSample {
  int threads = 0;
  double median_gbs = 0, min_gbs = 0, max_gbs = 0;  // over the repetitions
  int reps = 0;
};

// Decode-shaped reads: a buffer of `bytes` (several times the last-level cache) cut into 4 MiB
// "matrices"; each matrix's rows are cut into 8 items per thread that the threads claim as the
// matmul's do, the threads meet after each one as they do after each matmul, and each item is
// read once with 8 independent 64-bit sums. `reps` passes; the median, slowest and fastest.
BandwidthSample measure_read_bandwidth(kernels::ThreadPool& pool, size_t bytes, int reps);

// The node's figure for `ranks` ranks of `threads` each (as a job reads): each rank's own pool
// over its bytes / ranks; every pass starts on all ranks together, the ranks meet after each 4 MiB
// matrix as a decode step's ranks meet at each all-reduce (polling, yielding the core where ranks
// x threads >= cores, as MPI then does), and all their bytes count over the time until the last
// rank is done. Summing separate pools' figures instead depended on how
// their passes happened to overlap (36 to 67 GB/s in consecutive probes of one VM).
BandwidthSample measure_ranks_read_bandwidth(int ranks, int threads, size_t bytes, int reps);

// One pool's buffer of decode-shaped reads, mapped and touched when made; pass() reads it once.
class DecodeShapedReads {
 public:
  DecodeShapedReads(kernels::ThreadPool& pool, size_t bytes);
  ~DecodeShapedReads();
  DecodeShapedReads(const DecodeShapedReads&) = delete;
  DecodeShapedReads& operator=(const DecodeShapedReads&) = delete;
  // Reads the buffer once, 4 MiB "matrix" by matrix, calling after_matrix after each.
  void pass(const std::function<void()>& after_matrix = {});
  size_t bytes() const { return bytes_; }

 private:
  kernels::ThreadPool& pool_;
  size_t bytes_;
  LargeBuffer storage_;
  std::vector<uint64_t> item_sums_;
};

// The decode stream itself: the engine's matrix-vector kernels (one token) over `bytes` of Q4_0
// matrices of 4096 columns and ~4 MiB (packed as the engine packs them, on huge pages), read from
// memory, the pool meeting after each as after every matmul: the weights' reads and the kernels'
// own work at once, as a decode does them.
// With `tokens` > 1: the prompt tiles over the same matrices (a mixture of experts' prompt, whose
// experts each multiply their few tokens over weights no cache holds).
class DecodeStream {
 public:
  // `rows`: each matrix's (0: ~4 MiB of them); `type`: the weights' (random valid blocks).
  DecodeStream(kernels::ThreadPool& pool, size_t bytes, int64_t tokens = 1, int64_t rows = 0,
               gguf::GgmlType type = gguf::GgmlType::Q4_0);
  ~DecodeStream();
  DecodeStream(const DecodeStream&) = delete;
  DecodeStream& operator=(const DecodeStream&) = delete;
  // One matrix-vector product over every matrix, calling after_matrix after each.
  void pass(const std::function<void()>& after_matrix = {});
  size_t bytes() const { return bytes_; }
  double flops() const { return flops_; }  // multiply-adds x 2 a pass
  size_t matrices() const { return matrices_.size(); }

 private:
  kernels::ThreadPool& pool_;
  int64_t tokens_ = 1;
  size_t bytes_ = 0;
  double flops_ = 0;
  LargeBuffer storage_;
  std::vector<kernels::Matrix> matrices_;
  std::vector<float> x_, y_;
  kernels::Workspace ws_;
};

// Weight bytes per second of the decode stream: one pool, and `ranks` ranks' pools together
// (as measure_ranks_read_bandwidth); the median, slowest and fastest of `reps` passes.
BandwidthSample measure_decode_stream(kernels::ThreadPool& pool, size_t bytes, int reps);
BandwidthSample measure_ranks_decode_stream(int ranks, int threads, size_t bytes, int reps);
// GFLOPS of the prompt tiles of 8 tokens over `bytes` of weights read from memory (DecodeStream
// with 8 tokens), `ranks` ranks' pools together; the median of `reps` passes.
double measure_ranks_tile8_stream_gflops(int ranks, int threads, size_t bytes, int reps);
// The weight types a model's bytes are mostly in besides Q4_0 (Q4_K_M's Q4_K and Q6_K, Q8_0,
// IQ4_XS, the low-bit files' Q2_K, Q3_K, IQ1_S and IQ2_XXS, F16 heads): their decode streams read
// a byte slower or faster than Q4_0's (here Q6_K 8-17 % slower once the kernels prefetched, and
// llama3-1b's Q6_K head is 28 % of its bytes a token).
inline constexpr gguf::GgmlType kStreamRatioTypes[] = {
    gguf::GgmlType::Q8_0, gguf::GgmlType::Q4_K,   gguf::GgmlType::Q5_K,  gguf::GgmlType::Q6_K,    gguf::GgmlType::Q2_K,
    gguf::GgmlType::Q3_K, gguf::GgmlType::IQ4_XS, gguf::GgmlType::IQ1_S, gguf::GgmlType::IQ2_XXS, gguf::GgmlType::F16};
struct StreamRatio {
  gguf::GgmlType type;
  double ratio;  // the type's decode stream GB/s over Q4_0's
};
// Each kStreamRatioTypes type's decode stream (one pool, `bytes` of ~4 MiB matrices of 4096
// columns) against Q4_0's timed right before it: the median of `reps` pairs' ratios (neighbours
// share the VM's faster or slower state, which a rate alone does not).
std::vector<StreamRatio> measure_stream_ratios(kernels::ThreadPool& pool, size_t bytes, int reps);

// Flops per byte of the stream's weights (Q4_0: 2 x 32 weights in 18 bytes).
double decode_stream_flops_per_byte();

// The buffer size measure_read_bandwidth uses: 8x the last-level cache, 256 MiB to 1 GiB.
size_t probe_buffer_bytes();

// The median of a probe's repetitions (the mean of the middle two for an even count).
double median(std::vector<double> v);

// Multiply-adds per second (x2, as GFLOPS) of the engine's own matmul on a Q4_0 matrix of
// 1024 x 4096 (2.3 MB, in cache) times 64 tokens: the compute a prompt batch gets.
double measure_compute_gflops(kernels::ThreadPool& pool, int reps);
// The same matrix times 1 token (the matrix-vector kernels): the compute a decode step gets.
double measure_decode_gflops(kernels::ThreadPool& pool, int reps);

// attn_output and ffn_down sum each row in chunks of columns folded into double, so any split of
// the columns among ranks gives one rank's bits (kernels::matmul_row_parallel): a prompt's tiles
// run 4-14 % slower at 512 columns a chunk (llama3-1b's ffn_down), 26-36 % at 64 on this project's
// VM (OLMoE's attn_output and experts' ffn_down sum in chunks of 128); a decode token's
// matrix-vector kernel (in cache, one thread) 7 % at 512, 28 % at 64. The compute matmul's time a
// flop times `tokens` tokens (64: a prompt's tiles, 1: a decode's) summing in chunks of
// kRowParallelProbeChunks columns over the plain one's, each repetition's chunked runs against the
// plain run right before them; the median of `reps` such ratios.
inline constexpr int64_t kRowParallelProbeChunks[2] = {64, 512};
struct RowParallelSlowdown {
  double ratio[2] = {1, 1};
};
RowParallelSlowdown measure_row_parallel_slowdown(kernels::ThreadPool& pool, int64_t tokens, int reps);

// Microseconds one meeting of the pool's threads costs: 8 empty items per thread claimed as a
// matmul's rows are, and every thread done, as every matmul of more than a few rows ends (median
// of `reps` x 2000).
double measure_meeting_us(kernels::ThreadPool& pool, int reps);

// Microseconds one matmul of a mixture of experts' prompt costs beyond its tiles' flops: 8-token
// tiles over 256 MiB of weights from memory, in matrices of kPromptMeetingRows rows (~0.5 MiB, as
// small as a MoE's experts: OLMoE's 1.2 MB, Qwen3-30B-A3B's 0.9) against the same bytes in ~4 MiB
// matrices timed right before them, over the difference in their counts; the median of 2 x `reps`.
// An empty meeting (measure_meeting_us) misses what a meeting between real tiles costs: the thread
// done first waits for the other, and on this project's VM yields its core (OLMoE's 64-token
// prompt: 8 % of its samples in the pool's waiting against 1 % predicted).
inline constexpr int64_t kPromptMeetingRows = 224;
double measure_prompt_meeting_us(kernels::ThreadPool& pool, int reps);

// Ranks that fit the cores move together at least the bytes one of them moves alone; a figure below
// `one_rank` means something else held the cores during the passes (one such probe recorded 10 GB/s
// where three more read 37). measure() again, twice at most, while below it; the best is kept,
// since a disturbance only ever slows a pass.
double at_least_one_ranks(double one_rank, const std::function<double()>& measure);

// One line saying how the figures were measured, for output beside them: both, or the bandwidth's.
std::string probe_method(size_t bytes, int reps);
std::string bandwidth_method(size_t bytes, int reps);

}  // namespace clusterctl::tools

namespace clusterctl::tools {
// `clusterctl-worker --probe-speed [--threads T] [--ranks R]`: read bandwidth of one pool at 1, 2,
// 4, ... and T threads; the node's figure: R pools of T threads at once (as R ranks read); compute
// at R x T threads; one JSON object on stdout (what `doctor` records per node). `stream_only`
// (--stream-only, `doctor --memory-only`): the decode stream of one pool of T and of the R pools
// together, the figures that move with the memory's state, in about a second.
int probe_speed_main(int threads, int ranks, bool stream_only = false);
}  // namespace clusterctl::tools
