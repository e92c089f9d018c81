// matmul: quantise the activations once, then split the weight rows across the pool.
// Decode (one token) streams each weight row once; prompt batches walk tiles of
// several rows x several tokens so a weight block loaded into registers serves many tokens.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "worker/common/error.h"
#include "worker/kernels/kernel_table.h"

namespace clusterctl::kernels {

void* Workspace::get(size_t bytes) {
  if (bytes > cap_) {
    const size_t cap = (std::max<size_t>(bytes, 4096) + 63) & ~size_t{63};
    void* p = std::aligned_alloc(64, cap);
    if (!p) throw std::bad_alloc();
    std::free(buf_);
    buf_ = p;
    cap_ = cap;
  }
  return buf_;
}

Workspace::~Workspace() { std::free(buf_); }

namespace {

using detail::slot;

constexpr size_t align64(size_t n) { return (n + 63) & ~size_t{63}; }

// Rows per work item: enough items per thread for the atomic counter to even out a thread
// that the OS delays, few enough that claiming one costs nothing next to the dot products.
int64_t decode_chunk_rows(int64_t rows, int n_threads) {
  const int64_t target = rows / (static_cast<int64_t>(n_threads) * 8);
  return std::max<int64_t>(16, (target + 15) / 16 * 16);
}

// Prompt batches: a block of tokens whose activations stay in L2 while the rows go past.
constexpr int64_t kTokenBlock = 128;

// Below this many multiply-adds (a few microseconds of work) a matrix-vector product runs on
// the calling thread alone: waking the pool would cost more than it saves.
constexpr int64_t kMinParallelMacs = 64 * 1024;
constexpr int64_t kPromptChunkRows = 32;
// Elements per column slice (a multiple of every block size): 4 rows and 4 tokens of a slice
// take about 20 KB, which leaves room in a 32 KB L1.
constexpr int64_t kSliceCols = 2048;

void validate(const Matrix& w, int64_t n_tokens) {
  if (w.data == nullptr || w.rows <= 0 || w.cols <= 0 || n_tokens <= 0)
    throw Error("matmul got an empty weight matrix or batch (rows " + std::to_string(w.rows) + ", cols " +
                std::to_string(w.cols) + ", tokens " + std::to_string(n_tokens) + "); the model is malformed");
  const auto traits = gguf::type_traits(w.type);
  if (w.cols % traits.block_size != 0 || w.row_stride < gguf::row_bytes(w.type, static_cast<uint64_t>(w.cols)))
    throw Error("a " + std::string(traits.name) + " weight matrix with " + std::to_string(w.cols) +
                " columns and a row stride of " + std::to_string(w.row_stride) +
                " bytes is inconsistent; the model's tensor shapes are wrong");
}

}  // namespace

void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, Workspace& ws) {
  validate(w, n_tokens);
  const detail::KernelTable& table = detail::active_table();
  const GgmlType act = vec_dot_type(w.type);
  const detail::TileKernel tile = table.tile[slot(w.type)];

  // Activations, quantised once for all rows.
  const uint8_t* xq = reinterpret_cast<const uint8_t*>(x);
  size_t x_stride = static_cast<size_t>(w.cols) * sizeof(float);
  size_t xe_stride = 0;  // expanded activation rows for the tiles, when the tile has a layout
  const uint8_t* xt = nullptr;
  size_t xt_stride = 0;
  if (act != GgmlType::F32) {
    x_stride = align64(activation_row_bytes(w.type, w.cols));
    if (n_tokens > 1 && tile.expand)
      xe_stride = align64(static_cast<size_t>((w.cols + 63) / 64) * static_cast<size_t>(tile.expanded_bytes_per_64));
    auto* buf = static_cast<uint8_t*>(ws.get((x_stride + xe_stride) * static_cast<size_t>(n_tokens)));
    uint8_t* expanded = buf + x_stride * static_cast<size_t>(n_tokens);
    const detail::QuantizeFn quantize = table.quantize[slot(act)];
    const int64_t cols = w.cols;
    if (n_tokens == 1 || pool.size() == 1) {
      for (int64_t t = 0; t < n_tokens; ++t) {
        quantize(x + t * cols, buf + t * x_stride, cols);
        if (xe_stride) tile.expand(buf + t * x_stride, cols, expanded + t * xe_stride);
      }
    } else {
      pool.parallel_for(n_tokens, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          quantize(x + t * cols, buf + t * x_stride, cols);
          if (xe_stride) tile.expand(buf + t * x_stride, cols, expanded + t * xe_stride);
        }
      });
    }
    xq = buf;
    if (xe_stride) {
      xt = expanded;
      xt_stride = xe_stride;
    }
  }

  const detail::VecDotFn dot = table.vec_dot[slot(w.type)];
  const detail::RowsDotFn rows_dot = table.rows_dot[slot(w.type)];
  const int64_t rows = w.rows, cols = w.cols;
  const size_t w_stride = w.row_stride;
  std::atomic<int64_t> next{0};

  if (n_tokens == 1) {
    const int64_t chunk = decode_chunk_rows(rows, pool.size());
    auto decode_chunk = [&](int64_t c) {
      const int64_t end = std::min(rows, (c + 1) * chunk);
      int64_t r = c * chunk;
      if (rows_dot)
        for (; r + detail::kDecodeRows <= end; r += detail::kDecodeRows)
          rows_dot(cols, w.data + r * w_stride, w_stride, detail::kDecodeRows, xq, y + r);
      for (; r < end; ++r) y[r] = dot(cols, w.data + r * w_stride, xq);
    };
    // A small matrix costs less than waking the other threads: the caller does it alone.
    if (rows * cols < kMinParallelMacs) {
      for (int64_t c = 0; c * chunk < rows; ++c) decode_chunk(c);
      return;
    }
    const int64_t n_chunks = (rows + chunk - 1) / chunk;
    pool.run([&](int, int) {
      for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < n_chunks;
           c = next.fetch_add(1, std::memory_order_relaxed))
        decode_chunk(c);
    });
    return;
  }

  const int64_t row_chunks = (rows + kPromptChunkRows - 1) / kPromptChunkRows;
  const int64_t token_blocks = (n_tokens + kTokenBlock - 1) / kTokenBlock;
  const int64_t n_items = row_chunks * token_blocks;
  pool.run([&](int, int) {
    for (int64_t item = next.fetch_add(1, std::memory_order_relaxed); item < n_items;
         item = next.fetch_add(1, std::memory_order_relaxed)) {
      // Token block outermost: every thread works on the same activations at a time.
      const int64_t t_begin = (item / row_chunks) * kTokenBlock;
      const int64_t t_end = std::min(n_tokens, t_begin + kTokenBlock);
      const int64_t r_begin = (item % row_chunks) * kPromptChunkRows;
      const int64_t r_end = std::min(rows, r_begin + kPromptChunkRows);
      if (tile.fn) {
        // Column slices keep a tile's weight rows and activation rows in L1 together.
        for (int64_t k = 0; k < cols; k += kSliceCols) {
          const int64_t n = std::min(kSliceCols, cols - k);
          const size_t w_off = gguf::row_bytes(w.type, static_cast<uint64_t>(k));
          const size_t x_off = xt ? static_cast<size_t>(k / 64 * tile.expanded_bytes_per_64)
                                  : gguf::row_bytes(act, static_cast<uint64_t>(k));
          const uint8_t* x_rows = xt ? xt : xq;
          const size_t x_rows_stride = xt ? xt_stride : x_stride;
          for (int64_t t = t_begin; t < t_end; t += tile.tokens) {
            const int nt = static_cast<int>(std::min<int64_t>(tile.tokens, t_end - t));
            for (int64_t r = r_begin; r < r_end; r += tile.rows) {
              const int nr = static_cast<int>(std::min<int64_t>(tile.rows, r_end - r));
              tile.fn(n, w.data + r * w_stride + w_off, w_stride, nr, x_rows + t * x_rows_stride + x_off, x_rows_stride, nt,
                      y + t * rows + r, static_cast<size_t>(rows), k > 0);
            }
          }
        }
      } else {  // no tile for this type and ISA: one vec_dot per (row, token), on the same slices
        for (int64_t k = 0; k < cols; k += kSliceCols) {
          const int64_t n = std::min(kSliceCols, cols - k);
          const size_t w_off = gguf::row_bytes(w.type, static_cast<uint64_t>(k));
          const size_t x_off = gguf::row_bytes(act, static_cast<uint64_t>(k));
          for (int64_t r = r_begin; r < r_end; ++r) {
            const uint8_t* w_row = w.data + r * w_stride + w_off;
            for (int64_t t = t_begin; t < t_end; ++t) {
              const float d = dot(n, w_row, xq + t * x_stride + x_off);
              y[t * rows + r] = k > 0 ? y[t * rows + r] + d : d;
            }
          }
        }
      }
    }
  });
}

}  // namespace clusterctl::kernels
