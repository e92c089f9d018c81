// The matmuls over Layout::Packed8 matrices (packed.h). A token alone runs a group of 8 rows at a time; several tokens
// run two groups against up to kPackTokens tokens at a time where the ISA has that kernel (a group of 2048 columns is 9
// KB of Q4_0, so its weights stay in L1 across a block of tokens). Both do each row's sum in the same order, so a row's
// result is the same whether its token came alone or in a batch.
#include <algorithm>

#include "worker/kernels/packed.h"
#include "worker/kernels/packed_matmul.h"

namespace clusterctl::kernels {

namespace {

using detail::PackedKernels;

// Groups per work item: a few items per thread, so a thread the OS delays is evened out.
int64_t groups_per_item(int64_t groups, int n_threads) {
  return std::max<int64_t>(2, groups / (static_cast<int64_t>(n_threads) * 8));
}

// A token block whose quantised activations stay in L2 while a group's rows go past.
constexpr int64_t kTokenBlock = 64;
// Below this many multiply-adds the caller does the matrix alone (waking the pool costs more).
constexpr int64_t kMinParallelMacs = 64 * 1024;

// A packed type's format and the kernels that compute it on the active ISA (its scalar ones where
// the ISA has none).
struct PackedType {
  const detail::PackedFormat& format;
  PackedKernels kernels;
};

PackedType packed_type(GgmlType t) {
  const detail::PackedFormat& f = *detail::packed_format(t);  // validate() let only packable types in
  const PackedKernels& k = detail::active_table().packed[detail::slot(t)];
  return {f, k.dot ? k : f.reference};
}

// The tokens quantised (Q8_0, or Q8_K for the K-quants) once per call and prepared for the
// type's kernels (PackedFormat::prepare_token), with their xoff.
struct PackedActivations {
  const uint8_t* xq = nullptr;
  size_t x_stride = 0;
  const int32_t* xoff = nullptr;
  size_t xoff_stride = 0;  // int32s per token
};

PackedActivations quantize_tokens(const Matrix& w, const PackedType& type, const float* x, int64_t n_tokens,
                                  ThreadPool& pool, Workspace& ws) {
  PackedActivations a;
  const int64_t nb = w.cols / type.format.block_cols;
  a.x_stride = (activation_row_bytes(w.type, w.cols) + 63) & ~size_t{63};
  a.xoff_stride = static_cast<size_t>(nb * type.format.xoff_per_block + 15) & ~size_t{15};
  auto* buf = static_cast<uint8_t*>(ws.get((a.x_stride + a.xoff_stride * sizeof(int32_t)) * n_tokens));
  auto* sums = reinterpret_cast<int32_t*>(buf + a.x_stride * n_tokens);
  const GgmlType act = vec_dot_type(w.type);
  const auto quantize = detail::active_table().quantize[detail::slot(act)];
  auto convert = [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      quantize(x + t * w.cols, buf + t * a.x_stride, w.cols);
      type.format.prepare_token(buf + t * a.x_stride, nb, sums + t * a.xoff_stride);
    }
  };
  if (n_tokens == 1 || pool.size() == 1)
    convert(0, n_tokens);
  else
    pool.parallel_for(n_tokens, convert);
  a.xq = buf;
  a.xoff = sums;
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

namespace detail {

namespace {

// One work item's groups [g0, g1) x tokens [t0, t1). Several tokens share each pair of groups'
// unpacking (`many`, when the ISA has it); an odd group and a lone token take `one`.
template <typename One, typename Many>
void run_item(int64_t t0, int64_t t1, int64_t g0, int64_t g1, bool have_many, One&& one, Many&& many) {
  int64_t g = g0;
  if (have_many && t1 - t0 > 1)
    for (; g + 1 < g1; g += 2)
      for (int64_t t = t0; t < t1; t += kPackTokens)
        many(g, t, static_cast<int>(std::min<int64_t>(kPackTokens, t1 - t)));
  for (; g < g1; ++g)
    for (int64_t t = t0; t < t1; ++t) one(g, t);
}

}  // namespace

void matmul_packed(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, Workspace& ws) {
  const PackedType type = packed_type(w.type);
  const PackedActivations a = quantize_tokens(w, type, x, n_tokens, pool, ws);
  const size_t group_bytes = static_cast<size_t>(w.cols / type.format.block_cols) * type.format.block_bytes;
  for_each_item(w, n_tokens, pool, [&](int64_t t0, int64_t t1, int64_t g0, int64_t g1) {
    run_item(
        t0, t1, g0, g1, type.kernels.tokens_dot != nullptr,
        [&](int64_t g, int64_t t) {
          type.kernels.dot(w.cols, w.data + g * group_bytes, a.xq + t * a.x_stride, a.xoff + t * a.xoff_stride,
                           y + t * w.rows + g * kPackRows);
        },
        [&](int64_t g, int64_t t, int n) {
          type.kernels.tokens_dot(w.cols, w.data + g * group_bytes, w.data + (g + 1) * group_bytes,
                                  a.xq + t * a.x_stride, a.x_stride, a.xoff + t * a.xoff_stride, a.xoff_stride, n,
                                  y + t * w.rows + g * kPackRows, static_cast<size_t>(w.rows));
        });
  });
}

void matmul_row_parallel_packed(const Matrix& w, int64_t chunk, const float* x, int64_t n_tokens, double* y,
                                ThreadPool& pool, Workspace& ws, const float* token_scale) {
  const PackedType type = packed_type(w.type);
  const PackedActivations a = quantize_tokens(w, type, x, n_tokens, pool, ws);
  const size_t group_bytes = static_cast<size_t>(w.cols / type.format.block_cols) * type.format.block_bytes;
  for_each_item(w, n_tokens, pool, [&](int64_t t0, int64_t t1, int64_t g0, int64_t g1) {
    run_item(
        t0, t1, g0, g1, type.kernels.tokens_chunked_dot != nullptr,
        [&](int64_t g, int64_t t) {
          type.kernels.chunked_dot(w.cols, chunk, w.data + g * group_bytes, a.xq + t * a.x_stride,
                                   a.xoff + t * a.xoff_stride, y + t * w.rows + g * kPackRows,
                                   token_scale ? token_scale[t] : 1.0f);
        },
        [&](int64_t g, int64_t t, int n) {
          type.kernels.tokens_chunked_dot(w.cols, chunk, w.data + g * group_bytes, w.data + (g + 1) * group_bytes,
                                          a.xq + t * a.x_stride, a.x_stride, a.xoff + t * a.xoff_stride, a.xoff_stride,
                                          n, y + t * w.rows + g * kPackRows, static_cast<size_t>(w.rows),
                                          token_scale ? token_scale + t : nullptr);
        });
  });
}

}  // namespace detail
}  // namespace clusterctl::kernels
