// Layout::Q4_0x8: packing Q4_0 rows 8 at a time, and the matmuls over packed matrices. A token
// alone runs a group of 8 rows at a time; several tokens run two groups against up to
// kPackTokens tokens at a time where the ISA has that kernel (a group of 2048 columns is 9 KB,
// so its weights stay in L1 across a block of tokens). Both do each row's sum in the same order,
// so a row's result is the same whether its token came alone or in a batch.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "worker/common/error.h"
#include "worker/kernels/kernel_table.h"
#include "worker/kernels/packed_matmul.h"

namespace clusterctl::kernels {

namespace detail {

void q4_0x8_dot_scalar(int64_t n, const uint8_t* group, const void* x, const int32_t* xsum8, float* y) {
  const auto* b = static_cast<const block_q8_0*>(x);
  float acc[kPackRows] = {};
  for (int64_t i = 0; i < n / QK4_0; ++i) {
    const uint8_t* g = group + i * kPackedBlockBytes;
    const float dy = fp16_to_fp32(b[i].d);
    for (int r = 0; r < kPackRows; ++r) {
      fp16_t dw;
      std::memcpy(&dw, g + 2 * r, 2);
      int32_t dot = 0;
      for (int j = 0; j < 4; ++j)
        for (int m = 0; m < 4; ++m) {
          const uint8_t q = g[kPackRows * 2 + 32 * j + 4 * r + m];
          dot += (q & 0x0f) * b[i].qs[4 * j + m] + (q >> 4) * b[i].qs[16 + 4 * j + m];
        }
      acc[r] = std::fma(static_cast<float>(dot - xsum8[i]), fp16_to_fp32(dw) * dy, acc[r]);
    }
  }
  std::copy(acc, acc + kPackRows, y);
}

void q4_0x8_chunked_dot_scalar(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xsum8,
                               double* y) {
  std::fill(y, y + kPackRows, 0.0);
  for (int64_t k = 0; k < n; k += chunk) {
    float part[kPackRows];
    q4_0x8_dot_scalar(std::min(chunk, n - k), group + k / QK4_0 * kPackedBlockBytes,
                      static_cast<const block_q8_0*>(x) + k / QK8_0, xsum8 + k / QK8_0, part);
    for (int r = 0; r < kPackRows; ++r) y[r] += part[r];
  }
}

}  // namespace detail

namespace {

using detail::kPackedBlockBytes;
using detail::kPackRows;

// Groups per work item: a few items per thread, so a thread the OS delays is evened out.
int64_t groups_per_item(int64_t groups, int n_threads) {
  return std::max<int64_t>(2, groups / (static_cast<int64_t>(n_threads) * 8));
}

// A token block whose quantised activations stay in L2 while a group's rows go past.
constexpr int64_t kTokenBlock = 64;
// Below this many multiply-adds the caller does the matrix alone (waking the pool costs more).
constexpr int64_t kMinParallelMacs = 64 * 1024;

// The tokens quantised to Q8_0 once per call, with each block's 8 * sum(quants).
struct PackedActivations {
  const uint8_t* xq = nullptr;
  size_t x_stride = 0;
  const int32_t* xsum8 = nullptr;
  size_t xsum_stride = 0;  // int32s per token
};

PackedActivations quantize_tokens(const Matrix& w, const float* x, int64_t n_tokens, ThreadPool& pool,
                                  Workspace& ws) {
  PackedActivations a;
  const int64_t nb = w.cols / QK8_0;
  a.x_stride = (activation_row_bytes(w.type, w.cols) + 63) & ~size_t{63};
  a.xsum_stride = static_cast<size_t>(nb + 15) & ~size_t{15};
  auto* buf = static_cast<uint8_t*>(ws.get((a.x_stride + a.xsum_stride * sizeof(int32_t)) * n_tokens));
  auto* sums = reinterpret_cast<int32_t*>(buf + a.x_stride * n_tokens);
  const auto quantize = detail::active_table().quantize[detail::slot(GgmlType::Q8_0)];
  auto convert = [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      quantize(x + t * w.cols, buf + t * a.x_stride, w.cols);
      const auto* blocks = reinterpret_cast<const block_q8_0*>(buf + t * a.x_stride);
      for (int64_t i = 0; i < nb; ++i) {
        int32_t s = 0;
        for (int8_t q : blocks[i].qs) s += q;
        sums[t * a.xsum_stride + i] = 8 * s;
      }
    }
  };
  if (n_tokens == 1 || pool.size() == 1) convert(0, n_tokens);
  else pool.parallel_for(n_tokens, convert);
  a.xq = buf;
  a.xsum8 = sums;
  return a;
}

// Runs item(t_begin, t_end, g_begin, g_end) over blocks of tokens and groups of rows.
template <typename Item>
void for_each_item(const Matrix& w, int64_t n_tokens, ThreadPool& pool, Item&& item) {
  const int64_t groups = w.rows / kPackRows;
  if (n_tokens * w.rows * w.cols < kMinParallelMacs || pool.size() == 1) {
    for (int64_t t = 0; t < n_tokens; t += kTokenBlock) item(t, std::min(n_tokens, t + kTokenBlock), 0, groups);
    return;
  }
  const int64_t per_item = groups_per_item(groups, pool.size());
  const int64_t group_items = (groups + per_item - 1) / per_item;
  const int64_t token_blocks = (n_tokens + kTokenBlock - 1) / kTokenBlock;
  pool.for_each_claimed(group_items * token_blocks, [&](int64_t i) {
    const int64_t t = (i / group_items) * kTokenBlock, g = (i % group_items) * per_item;
    item(t, std::min(n_tokens, t + kTokenBlock), g, std::min(groups, g + per_item));
  });
}

}  // namespace

bool should_pack_q4_0x8(const Matrix& w) {
  return w.layout == Layout::Rows && w.type == GgmlType::Q4_0 && w.rows % kPackRows == 0 && w.rows > 0 &&
         w.cols % QK4_0 == 0 && detail::active_table().q4_0x8_dot != nullptr;
}

size_t packed_q4_0x8_bytes(const Matrix& w) {
  return static_cast<size_t>(w.rows / kPackRows) * static_cast<size_t>(w.cols / QK4_0) * kPackedBlockBytes;
}

Matrix pack_q4_0x8(const Matrix& w, uint8_t* dst) {
  if (w.layout != Layout::Rows || w.type != GgmlType::Q4_0 || w.rows % kPackRows != 0 || w.cols % QK4_0 != 0)
    throw Error("pack_q4_0x8 needs a Q4_0 matrix of whole groups of 8 rows");
  const int64_t nb = w.cols / QK4_0;
  for (int64_t g = 0; g < w.rows / kPackRows; ++g)
    for (int64_t i = 0; i < nb; ++i) {
      uint8_t* out = dst + (g * nb + i) * kPackedBlockBytes;
      for (int r = 0; r < kPackRows; ++r) {
        const auto* blk = reinterpret_cast<const block_q4_0*>(w.data + (g * kPackRows + r) * w.row_stride) + i;
        std::memcpy(out + 2 * r, &blk->d, 2);
        for (int j = 0; j < 4; ++j) std::memcpy(out + kPackRows * 2 + 32 * j + 4 * r, blk->qs + 4 * j, 4);
      }
    }
  Matrix p = w;
  p.data = dst;
  p.row_stride = 0;
  p.layout = Layout::Q4_0x8;
  return p;
}

namespace detail {

namespace {

// One work item's groups [g0, g1) x tokens [t0, t1). Several tokens share each pair of groups'
// unpacking (`many`, when the ISA has it); an odd group and a lone token take `one`.
template <typename One, typename Many>
void run_item(int64_t t0, int64_t t1, int64_t g0, int64_t g1, bool have_many, One&& one, Many&& many) {
  int64_t g = g0;
  if (have_many && t1 - t0 > 1)
    for (; g + 1 < g1; g += 2)
      for (int64_t t = t0; t < t1; t += kPackTokens) many(g, t, static_cast<int>(std::min<int64_t>(kPackTokens, t1 - t)));
  for (; g < g1; ++g)
    for (int64_t t = t0; t < t1; ++t) one(g, t);
}

}  // namespace

void matmul_q4_0x8(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, Workspace& ws) {
  const PackedActivations a = quantize_tokens(w, x, n_tokens, pool, ws);
  const PackedDotFn dot = active_table().q4_0x8_dot ? active_table().q4_0x8_dot : q4_0x8_dot_scalar;
  const PackedTokensDotFn tokens_dot = active_table().q4_0x8_tokens_dot;
  const size_t group_bytes = static_cast<size_t>(w.cols / QK4_0) * kPackedBlockBytes;
  for_each_item(w, n_tokens, pool, [&](int64_t t0, int64_t t1, int64_t g0, int64_t g1) {
    run_item(
        t0, t1, g0, g1, tokens_dot != nullptr,
        [&](int64_t g, int64_t t) {
          dot(w.cols, w.data + g * group_bytes, a.xq + t * a.x_stride, a.xsum8 + t * a.xsum_stride,
              y + t * w.rows + g * kPackRows);
        },
        [&](int64_t g, int64_t t, int n) {
          tokens_dot(w.cols, w.data + g * group_bytes, w.data + (g + 1) * group_bytes, a.xq + t * a.x_stride,
                     a.x_stride, a.xsum8 + t * a.xsum_stride, a.xsum_stride, n, y + t * w.rows + g * kPackRows,
                     static_cast<size_t>(w.rows));
        });
  });
}

void matmul_row_parallel_q4_0x8(const Matrix& w, int64_t chunk, const float* x, int64_t n_tokens, double* y,
                                ThreadPool& pool, Workspace& ws) {
  const PackedActivations a = quantize_tokens(w, x, n_tokens, pool, ws);
  const ChunkedPackedDotFn dot =
      active_table().q4_0x8_chunked_dot ? active_table().q4_0x8_chunked_dot : q4_0x8_chunked_dot_scalar;
  const ChunkedPackedTokensDotFn tokens_dot = active_table().q4_0x8_tokens_chunked_dot;
  const size_t group_bytes = static_cast<size_t>(w.cols / QK4_0) * kPackedBlockBytes;
  for_each_item(w, n_tokens, pool, [&](int64_t t0, int64_t t1, int64_t g0, int64_t g1) {
    run_item(
        t0, t1, g0, g1, tokens_dot != nullptr,
        [&](int64_t g, int64_t t) {
          dot(w.cols, chunk, w.data + g * group_bytes, a.xq + t * a.x_stride, a.xsum8 + t * a.xsum_stride,
              y + t * w.rows + g * kPackRows);
        },
        [&](int64_t g, int64_t t, int n) {
          tokens_dot(w.cols, chunk, w.data + g * group_bytes, w.data + (g + 1) * group_bytes, a.xq + t * a.x_stride,
                     a.x_stride, a.xsum8 + t * a.xsum_stride, a.xsum_stride, n, y + t * w.rows + g * kPackRows,
                     static_cast<size_t>(w.rows));
        });
  });
}

}  // namespace detail
}  // namespace clusterctl::kernels
