// One decode token's mixture of experts in two pool meetings. Called one matmul at a time, a
// DeepSeek-V2-Lite layer meets the pool 21 times for its 6 routed experts and the shared one
// (gate, up, down each), and each meeting of small matrices costs about as much as its work at
// 2 threads on a loaded machine. Here every matrix is cut into row slices and the threads claim
// (matrix, slice) items: all gate and up rows in one meeting, all down rows in the next. A row's
// sum does not depend on the rows around it (kernels::row_slice), so the bits are those of
// ForwardPass::experts followed by the shared experts' swiglu.
#include <algorithm>
#include <atomic>

#include "worker/model/forward.h"

namespace clusterctl::model {
namespace {

// One matrix slice's matmul: y = w x (gate, up) or the row-parallel sums of the down projection.
struct SliceJob {
  kernels::Matrix w;
  const float* x = nullptr;
  float* y = nullptr;            // gate and up
  double* y_sums = nullptr;      // down
  const float* scale = nullptr;  // the router weight of a routed expert's down projection
};

// Rows per slice: about 8 items per thread over all the matrices, whole groups of 16 rows (the
// matrix-vector kernels' row block and Packed8's group), at most 512 rows.
int64_t slice_rows(int64_t total_rows, int n_threads) {
  const int64_t target = total_rows / (static_cast<int64_t>(n_threads) * 8);
  return std::clamp<int64_t>((target + 15) / 16 * 16, 64, 512);
}

}  // namespace

void ForwardPass::experts_one_token(const LayerWeights& L) {
  const HParams& hp = m_.hp;
  const int64_t E = hp.n_embd, K = hp.n_expert_used, F = n_ff_;
  route(L, 1);
  // The routed experts this rank holds, in expert order (the order ForwardPass::experts adds them).
  int64_t chosen[64], scale_slot[64], n = 0;
  for (int64_t k = 0; k < K && k < 64; ++k)
    if (m_.part.holds_expert(route_expert_[k])) {
      chosen[n] = route_expert_[k];
      scale_slot[n++] = k;
    }
  for (int64_t i = 1; i < n; ++i)
    for (int64_t j = i; j > 0 && chosen[j - 1] > chosen[j]; --j) {
      std::swap(chosen[j - 1], chosen[j]);
      std::swap(scale_slot[j - 1], scale_slot[j]);
    }
  const bool shared = L.has(TensorKind::FfnGateShexp);
  const int64_t Fs = shared ? L.matrix(TensorKind::FfnGateShexp).rows : 0;

  std::vector<SliceJob> jobs;  // at most a few hundred items a layer
  auto run_jobs = [&] {
    std::atomic<size_t> next{0};
    pool_.run([&](int ith, int) {
      kernels::Workspace& ws = moe_thread_ws_[ith];
      for (size_t i = next.fetch_add(1, std::memory_order_relaxed); i < jobs.size();
           i = next.fetch_add(1, std::memory_order_relaxed)) {
        const SliceJob& j = jobs[i];
        if (j.y)
          kernels::matmul(j.w, j.x, 1, j.y, moe_serial_pool_, ws, kernels::Kernels::MatrixVector);
        else
          kernels::matmul_row_parallel(j.w, grid_.ffn_down, j.x, 1, j.y_sums, moe_serial_pool_, ws,
                                       kernels::Kernels::MatrixVector, j.scale);
      }
    });
  };
  auto add_slices = [&](const kernels::Matrix& w, const float* x, float* y, double* y_sums, const float* scale,
                        int64_t rows_per_slice) {
    for (int64_t r = 0; r < w.rows; r += rows_per_slice) {
      const int64_t end = std::min(w.rows, r + rows_per_slice);
      jobs.push_back({kernels::row_slice(w, r, end), x, y ? y + r : nullptr, y_sums ? y_sums + r : nullptr, scale});
    }
  };

  // Every gate and up row: routed expert i's at i * F, the shared experts' after them.
  const float* x = xn_.data();
  int64_t rows_per_slice = slice_rows(2 * (n * F + Fs), pool_.size());
  for (int64_t i = 0; i < n; ++i) {
    add_slices(L.expert(TensorKind::FfnGateExps, chosen[i]), x, &moe_gate_[i * F], nullptr, nullptr, rows_per_slice);
    add_slices(L.expert(TensorKind::FfnUpExps, chosen[i]), x, &moe_up_[i * F], nullptr, nullptr, rows_per_slice);
  }
  if (shared) {
    add_slices(L.matrix(TensorKind::FfnGateShexp), x, &moe_gate_[n * F], nullptr, nullptr, rows_per_slice);
    add_slices(L.matrix(TensorKind::FfnUpShexp), x, &moe_up_[n * F], nullptr, nullptr, rows_per_slice);
  }
  run_jobs();
  for (int64_t i = 0; i < n * F + Fs; ++i) moe_gate_[i] = silu(moe_gate_[i]) * moe_up_[i];

  // Every down row: routed expert i's sums at i * E scaled by its router weight, the shared
  // experts' unscaled at n * E.
  jobs.clear();
  rows_per_slice = slice_rows((n + shared) * E, pool_.size());
  for (int64_t i = 0; i < n; ++i)
    add_slices(L.expert(TensorKind::FfnDownExps, chosen[i]), &moe_gate_[i * F], nullptr, &moe_down_[i * E],
               &route_weight_[scale_slot[i]], rows_per_slice);
  if (shared)
    add_slices(L.matrix(TensorKind::FfnDownShexp), &moe_gate_[n * F], nullptr, &moe_down_[n * E], nullptr,
               rows_per_slice);
  run_jobs();

  // As ForwardPass::experts and feed_forward add them: from 0, each routed expert in expert
  // order, then the shared experts.
  std::fill(proj_.begin(), proj_.begin() + E, 0.0);
  for (int64_t i = 0; i < n + shared; ++i)
    for (int64_t c = 0; c < E; ++c) proj_[c] += moe_down_[i * E + c];
}

}  // namespace clusterctl::model
