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

int64_t decode_slice_rows(int64_t total_rows, int n_threads) {
  const int64_t target = total_rows / (static_cast<int64_t>(n_threads) * 8);
  return std::clamp<int64_t>((target + 15) / 16 * 16, 64, 512);
}

void ForwardPass::add_slices(const kernels::Matrix& w, const float* x, float* y, int64_t rows_per_slice) {
  for (int64_t r = 0; r < w.rows; r += rows_per_slice)
    slices_.push_back({.w = kernels::row_slice(w, r, std::min(w.rows, r + rows_per_slice)), .x = x, .y = y + r});
}

void ForwardPass::add_slices_row_parallel(const kernels::Matrix& w, int64_t chunk, const float* x, double* y_sums,
                                          const float* scale, int64_t rows_per_slice) {
  for (int64_t r = 0; r < w.rows; r += rows_per_slice)
    slices_.push_back({.w = kernels::row_slice(w, r, std::min(w.rows, r + rows_per_slice)),
                       .x = x,
                       .y_sums = y_sums + r,
                       .scale = scale,
                       .chunk = chunk});
}

void ForwardPass::run_slices() {
  std::atomic<size_t> next{0};
  pool_.run([&](int ith, int) {
    kernels::Workspace& ws = thread_ws_[ith];
    for (size_t i = next.fetch_add(1, std::memory_order_relaxed); i < slices_.size();
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      const SliceJob& j = slices_[i];
      if (j.y)
        kernels::matmul(j.w, j.x, 1, j.y, serial_pool_, ws, kernels::Kernels::MatrixVector);
      else
        kernels::matmul_row_parallel(j.w, j.chunk, j.x, 1, j.y_sums, serial_pool_, ws, kernels::Kernels::MatrixVector,
                                     j.scale);
    }
  });
  slices_.clear();
}

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

  // Every gate and up row: routed expert i's at i * F, the shared experts' after them.
  const float* x = xn_.data();
  int64_t rows_per_slice = decode_slice_rows(2 * (n * F + Fs), pool_.size());
  for (int64_t i = 0; i < n; ++i) {
    add_slices(L.expert(TensorKind::FfnGateExps, chosen[i]), x, &moe_gate_[i * F], rows_per_slice);
    add_slices(L.expert(TensorKind::FfnUpExps, chosen[i]), x, &moe_up_[i * F], rows_per_slice);
  }
  if (shared) {
    add_slices(L.matrix(TensorKind::FfnGateShexp), x, &moe_gate_[n * F], rows_per_slice);
    add_slices(L.matrix(TensorKind::FfnUpShexp), x, &moe_up_[n * F], rows_per_slice);
  }
  run_slices();
  gate_by_up(moe_gate_.data(), moe_up_.data(), n * F + Fs);

  // Every down row: routed expert i's sums at i * E scaled by its router weight, the shared
  // experts' unscaled at n * E.
  rows_per_slice = decode_slice_rows((n + shared) * E, pool_.size());
  for (int64_t i = 0; i < n; ++i)
    add_slices_row_parallel(L.expert(TensorKind::FfnDownExps, chosen[i]), grid_.ffn_down, &moe_gate_[i * F],
                            &moe_down_[i * E], &route_weight_[scale_slot[i]], rows_per_slice);
  if (shared)
    add_slices_row_parallel(L.matrix(TensorKind::FfnDownShexp), grid_.ffn_down, &moe_gate_[n * F], &moe_down_[n * E],
                            nullptr, rows_per_slice);
  run_slices();

  // As ForwardPass::experts and feed_forward add them: from 0, each routed expert in expert
  // order, then the shared experts.
  std::fill(proj_.begin(), proj_.begin() + E, 0.0);
  for (int64_t i = 0; i < n + shared; ++i)
    for (int64_t c = 0; c < E; ++c) proj_[c] += moe_down_[i * E + c];
}

}  // namespace clusterctl::model
