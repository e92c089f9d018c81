// matmul: quantise the activations once, then split the weight rows across the pool.
// Decode (one token) streams each weight row once; prompt batches walk tiles of
// several rows x several tokens so a weight block loaded into registers serves many tokens.
#include <algorithm>
#include <cstdlib>
#include <new>
#include <string>

#include "worker/common/error.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/packed.h"
#include "worker/kernels/packed_matmul.h"

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

// Rows per work item: enough items per thread for the claimed items to even out a thread
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
  const bool packed = w.layout == Layout::Packed8;
  if (packed && (!is_packable(w.type) || w.rows % kPackRows != 0))
    throw Error("a packed matrix must be one of " + detail::packable_type_names() +
                " with whole groups of 8 rows (got " + std::string(traits.name) + ", " + std::to_string(w.rows) +
                " rows)");
  if (w.cols % traits.block_size != 0 ||
      (!packed && w.row_stride < gguf::row_bytes(w.type, static_cast<uint64_t>(w.cols))))
    throw Error("a " + std::string(traits.name) + " weight matrix with " + std::to_string(w.cols) +
                " columns and a row stride of " + std::to_string(w.row_stride) +
                " bytes is inconsistent; the model's tensor shapes are wrong");
}

// Chunks of matmul_row_parallel must hold whole blocks of the weights and of the activations.
void validate_chunk(const Matrix& w, int64_t chunk) {
  const int64_t block = gguf::type_traits(w.type).block_size;
  const int64_t act_block = gguf::type_traits(vec_dot_type(w.type)).block_size;
  if (chunk <= 0 || chunk % block != 0 || chunk % act_block != 0)
    throw Error("a row-parallel " + std::string(gguf::type_name(w.type)) + " matmul cannot sum in chunks of " +
                std::to_string(chunk) + " columns: a chunk must hold whole blocks of " + std::to_string(block) +
                "; the model's split units are inconsistent with its tensor types");
}

// The activations of one matmul call, quantised once for all rows (and, for tiles that read
// their own layout, expanded once).
struct Activations {
  GgmlType act = GgmlType::F32;
  const uint8_t* xq = nullptr;  // quantize_activations' rows (the floats themselves for F32)
  size_t x_stride = 0;
  const uint8_t* xt = nullptr;  // expanded rows for the tiles, or null
  size_t xt_stride = 0;
};

Activations prepare_activations(const Matrix& w, const detail::TileKernel& tile, const float* x, int64_t n_tokens,
                                bool tiles, ThreadPool& pool, Workspace& ws) {
  const detail::KernelTable& table = detail::active_table();
  Activations a;
  a.act = vec_dot_type(w.type);
  a.xq = reinterpret_cast<const uint8_t*>(x);
  a.x_stride = static_cast<size_t>(w.cols) * sizeof(float);
  if (a.act == GgmlType::F32) return a;
  a.x_stride = align64(activation_row_bytes(w.type, w.cols));
  size_t xe_stride = 0;
  if (tiles && tile.expand)
    xe_stride = align64(static_cast<size_t>((w.cols + 63) / 64) * static_cast<size_t>(tile.expanded_bytes_per_64));
  auto* buf = static_cast<uint8_t*>(ws.get((a.x_stride + xe_stride) * static_cast<size_t>(n_tokens)));
  uint8_t* expanded = buf + a.x_stride * static_cast<size_t>(n_tokens);
  const detail::QuantizeFn quantize = table.quantize[slot(a.act)];
  const int64_t cols = w.cols;
  const size_t x_stride = a.x_stride;
  auto convert = [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      quantize(x + t * cols, buf + t * x_stride, cols);
      if (xe_stride) tile.expand(buf + t * x_stride, cols, expanded + t * xe_stride);
    }
  };
  if (n_tokens == 1 || pool.size() == 1)
    convert(0, n_tokens);
  else
    pool.parallel_for(n_tokens, convert);
  a.xq = buf;
  if (xe_stride) {
    a.xt = expanded;
    a.xt_stride = xe_stride;
  }
  return a;
}

// Runs decode_rows(begin, end) over all rows: on the calling thread for a small matrix, else in
// chunks claimed by the pool's threads.
template <typename DecodeRows>
void decode_parallel(const Matrix& w, int64_t n_tokens, ThreadPool& pool, DecodeRows&& decode_rows) {
  const int64_t rows = w.rows;
  const int64_t chunk = decode_chunk_rows(rows, pool.size());
  // A small matrix costs less than waking the other threads: the caller does it alone.
  if (rows * w.cols * n_tokens < kMinParallelMacs) {
    decode_rows(0, rows);
    return;
  }
  pool.for_each_claimed((rows + chunk - 1) / chunk,
                        [&](int64_t c) { decode_rows(c * chunk, std::min(rows, (c + 1) * chunk)); });
}

// The matrix-vector kernels over a batch: rows in blocks small enough to stay in cache while
// every token runs over them (one pass over the weights from memory), one token at a time.
// rows_of_token(r_begin, r_end, t) computes rows [r_begin, r_end) of token t.
constexpr int64_t kMatrixVectorRowBlock = 16;

template <typename RowsOfToken>
void matrix_vector_batch(const Matrix& w, int64_t n_tokens, ThreadPool& pool, RowsOfToken&& rows_of_token) {
  decode_parallel(w, n_tokens, pool, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b += kMatrixVectorRowBlock)
      for (int64_t t = 0; t < n_tokens; ++t) rows_of_token(b, std::min(end, b + kMatrixVectorRowBlock), t);
  });
}

bool use_tiles(Kernels kernels, int64_t n_tokens) {
  return kernels == Kernels::Tiles || (kernels == Kernels::BySize && n_tokens > 1);
}

// Runs item(t_begin, t_end, r_begin, r_end) over the prompt batch's blocks of tokens and rows.
template <typename Item>
void prompt_parallel(const Matrix& w, int64_t n_tokens, ThreadPool& pool, Item&& item) {
  const int64_t rows = w.rows;
  const int64_t row_chunks = (rows + kPromptChunkRows - 1) / kPromptChunkRows;
  const int64_t token_blocks = (n_tokens + kTokenBlock - 1) / kTokenBlock;
  pool.for_each_claimed(row_chunks * token_blocks, [&](int64_t i) {
    // Token block outermost: every thread works on the same activations at a time.
    const int64_t t_begin = (i / row_chunks) * kTokenBlock;
    const int64_t r_begin = (i % row_chunks) * kPromptChunkRows;
    item(t_begin, std::min(n_tokens, t_begin + kTokenBlock), r_begin, std::min(rows, r_begin + kPromptChunkRows));
  });
}

// Byte offset of column k in an activation row (expanded for the tile, or as quantised).
size_t x_offset(const Activations& a, const detail::TileKernel& tile, int64_t k) {
  return a.xt ? static_cast<size_t>(k / 64 * tile.expanded_bytes_per_64)
              : gguf::row_bytes(a.act, static_cast<uint64_t>(k));
}

}  // namespace

void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, Workspace& ws,
            Kernels kernels) {
  validate(w, n_tokens);
  if (w.layout == Layout::Packed8) return detail::matmul_packed(w, x, n_tokens, y, pool, ws);
  const detail::KernelTable& table = detail::active_table();
  const detail::TileKernel tile = table.tile[slot(w.type)];
  const bool tiles = use_tiles(kernels, n_tokens);
  const Activations a = prepare_activations(w, tile, x, n_tokens, tiles, pool, ws);
  const detail::VecDotFn dot = table.vec_dot[slot(w.type)];
  const detail::RowsDotFn rows_dot = table.rows_dot[slot(w.type)];
  const int64_t rows = w.rows, cols = w.cols;
  const size_t w_stride = w.row_stride;
  const uint8_t* xq = a.xq;

  if (!tiles) {
    matrix_vector_batch(w, n_tokens, pool, [&](int64_t r, int64_t end, int64_t t) {
      const uint8_t* xt = xq + t * a.x_stride;
      float* yt = y + t * rows;
      if (rows_dot)
        for (; r + detail::kDecodeRows <= end; r += detail::kDecodeRows)
          rows_dot(cols, w.data + r * w_stride, w_stride, detail::kDecodeRows, xt, yt + r);
      for (; r < end; ++r) yt[r] = dot(cols, w.data + r * w_stride, xt);
    });
    return;
  }

  prompt_parallel(w, n_tokens, pool, [&](int64_t t_begin, int64_t t_end, int64_t r_begin, int64_t r_end) {
    // Column slices keep a tile's weight rows and activation rows in L1 together.
    for (int64_t k = 0; k < cols; k += kSliceCols) {
      const int64_t n = std::min(kSliceCols, cols - k);
      const size_t w_off = gguf::row_bytes(w.type, static_cast<uint64_t>(k));
      if (tile.fn) {
        const size_t x_off = x_offset(a, tile, k);
        const uint8_t* x_rows = a.xt ? a.xt : xq;
        const size_t x_rows_stride = a.xt ? a.xt_stride : a.x_stride;
        for (int64_t t = t_begin; t < t_end; t += tile.tokens) {
          const int nt = static_cast<int>(std::min<int64_t>(tile.tokens, t_end - t));
          for (int64_t r = r_begin; r < r_end; r += tile.rows) {
            const int nr = static_cast<int>(std::min<int64_t>(tile.rows, r_end - r));
            tile.fn(n, w.data + r * w_stride + w_off, w_stride, nr, x_rows + t * x_rows_stride + x_off, x_rows_stride,
                    nt, y + t * rows + r, static_cast<size_t>(rows), k > 0);
          }
        }
      } else {  // no tile for this type and ISA: one vec_dot per (row, token), on the same slices
        const size_t x_off = gguf::row_bytes(a.act, static_cast<uint64_t>(k));
        for (int64_t r = r_begin; r < r_end; ++r) {
          const uint8_t* w_row = w.data + r * w_stride + w_off;
          for (int64_t t = t_begin; t < t_end; ++t) {
            const float d = dot(n, w_row, xq + t * a.x_stride + x_off);
            y[t * rows + r] = k > 0 ? y[t * rows + r] + d : d;
          }
        }
      }
    }
  });
}

void matmul_row_parallel(const Matrix& w, int64_t chunk, const float* x, int64_t n_tokens, double* y, ThreadPool& pool,
                         Workspace& ws, Kernels kernels, const float* token_scale) {
  validate(w, n_tokens);
  validate_chunk(w, chunk);
  if (w.layout == Layout::Packed8)
    return detail::matmul_row_parallel_packed(w, chunk, x, n_tokens, y, pool, ws, token_scale);
  const detail::KernelTable& table = detail::active_table();
  const detail::TileKernel tile = table.tile[slot(w.type)];
  const bool tiles = use_tiles(kernels, n_tokens);
  const Activations a = prepare_activations(w, tile, x, n_tokens, tiles, pool, ws);
  const detail::VecDotFn dot = table.vec_dot[slot(w.type)];
  const int64_t rows = w.rows, cols = w.cols;
  const size_t w_stride = w.row_stride;
  const uint8_t* xq = a.xq;
  // The generic form: one vec_dot per chunk (a kernel folding inside its loop is faster).
  const size_t w_chunk = gguf::row_bytes(w.type, static_cast<uint64_t>(chunk));
  const size_t x_chunk = gguf::row_bytes(a.act, static_cast<uint64_t>(chunk));
  auto row_by_chunks = [&](const uint8_t* w_row, const uint8_t* x_row, int64_t n, int64_t t) {
    double sum = 0;
    const float scale = token_scale ? token_scale[t] : 1.0f;  // x * 1.0f is x: unscaled sums keep their bits
    for (int64_t k = 0; k < n; k += chunk, w_row += w_chunk, x_row += x_chunk)
      sum += dot(std::min(chunk, n - k), w_row, x_row) * scale;
    return sum;
  };

  if (!tiles) {
    const detail::ChunkedRowsDotFn rows_dot = table.chunked_rows_dot[slot(w.type)];
    matrix_vector_batch(w, n_tokens, pool, [&](int64_t r, int64_t end, int64_t t) {
      const uint8_t* xt = xq + t * a.x_stride;
      double* yt = y + t * rows;
      if (rows_dot)
        for (; r + detail::kDecodeRows <= end; r += detail::kDecodeRows)
          rows_dot(cols, chunk, w.data + r * w_stride, w_stride, detail::kDecodeRows, xt, yt + r,
                   token_scale ? token_scale[t] : 1.0f);
      for (; r < end; ++r) yt[r] = row_by_chunks(w.data + r * w_stride, xt, cols, t);
    });
    return;
  }

  // Column slices as in matmul, cut on chunk boundaries.
  const int64_t slice = std::max(chunk, kSliceCols / chunk * chunk);
  // The per-chunk fallback through the float tile: the expanded layout is addressed per 64 elements.
  // Scaled sums need each chunk's float, so they take it past a fused chunked tile.
  const bool chunked_tile = tile.chunked && !token_scale;
  const bool tile_per_chunk =
      !chunked_tile && tile.fn && (!a.xt || chunk % 64 == 0) && tile.rows * tile.tokens <= detail::kMaxTileOutputs;
  prompt_parallel(w, n_tokens, pool, [&](int64_t t_begin, int64_t t_end, int64_t r_begin, int64_t r_end) {
    for (int64_t t = t_begin; t < t_end; ++t) std::fill(y + t * rows + r_begin, y + t * rows + r_end, 0.0);
    for (int64_t k = 0; k < cols; k += slice) {
      const int64_t n = std::min(slice, cols - k);
      const size_t w_off = gguf::row_bytes(w.type, static_cast<uint64_t>(k));
      if (chunked_tile || tile_per_chunk) {
        const uint8_t* x_rows = a.xt ? a.xt : xq;
        const size_t x_rows_stride = a.xt ? a.xt_stride : a.x_stride;
        for (int64_t t = t_begin; t < t_end; t += tile.tokens) {
          const int nt = static_cast<int>(std::min<int64_t>(tile.tokens, t_end - t));
          for (int64_t r = r_begin; r < r_end; r += tile.rows) {
            const int nr = static_cast<int>(std::min<int64_t>(tile.rows, r_end - r));
            const uint8_t* wp = w.data + r * w_stride + w_off;
            const uint8_t* xp = x_rows + t * x_rows_stride + x_offset(a, tile, k);
            double* yp = y + t * rows + r;
            if (chunked_tile) {
              tile.chunked(n, chunk, wp, w_stride, nr, xp, x_rows_stride, nt, yp, static_cast<size_t>(rows));
              continue;
            }
            float part[detail::kMaxTileOutputs];
            for (int64_t c = 0; c < n; c += chunk) {
              const int64_t len = std::min(chunk, n - c);
              tile.fn(len, wp + gguf::row_bytes(w.type, static_cast<uint64_t>(c)), w_stride, nr,
                      xp + x_offset(a, tile, c), x_rows_stride, nt, part, static_cast<size_t>(nr), false);
              for (int j = 0; j < nt; ++j) {
                const float scale = token_scale ? token_scale[t + j] : 1.0f;
                for (int i = 0; i < nr; ++i) yp[j * rows + i] += part[j * nr + i] * scale;
              }
            }
          }
        }
      } else {
        for (int64_t r = r_begin; r < r_end; ++r)
          for (int64_t t = t_begin; t < t_end; ++t)
            y[t * rows + r] +=
                row_by_chunks(w.data + r * w_stride + w_off,
                              xq + t * a.x_stride + gguf::row_bytes(a.act, static_cast<uint64_t>(k)), n, t);
      }
    }
  });
}

}  // namespace clusterctl::kernels
