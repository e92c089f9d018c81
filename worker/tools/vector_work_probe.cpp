#include "worker/tools/vector_work_probe.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "worker/model/attention_head.h"
#include "worker/model/forward.h"

namespace clusterctl::tools {
namespace {

using Clock = std::chrono::steady_clock;

// Nanoseconds of one call of `work(ith)` on each thread, all the pool's threads calling it
// `calls` times at once: the fastest of `reps` (after a warm one), the slowest thread's time. The
// fastest: a disturbance (another process on the cores) only ever slows a repetition, and these
// figures are fitted through pairs of them, which a slowed one throws far off.
double per_call_ns(kernels::ThreadPool& pool, int calls, int reps, const std::function<void(int)>& work) {
  std::vector<double> ns;
  for (int r = 0; r <= reps; ++r) {
    const auto t0 = Clock::now();
    pool.run([&](int ith, int) {
      for (int c = 0; c < calls; ++c) work(ith);
    });
    if (r > 0) ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / calls);
  }
  return *std::min_element(ns.begin(), ns.end());
}

// One thread's cache of one KV head over `n_pos` positions, its query and scratch.
struct HeadCache {
  std::vector<uint8_t> keys, values, query_q, weights_q;
  std::vector<float> query, scores, out;
  HeadCache(int64_t D, int64_t n_pos) {
    const auto type = gguf::GgmlType::F16;
    std::vector<float> rows(static_cast<size_t>(D * n_pos));
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    keys.resize(kernels::activation_row_bytes(type, D * n_pos));
    values.resize(keys.size());
    kernels::quantize_activations(type, rows.data(), keys.data(), D * n_pos);
    kernels::quantize_activations(type, rows.data(), values.data(), D * n_pos);
    query.assign(rows.begin(), rows.begin() + D);
    query_q.resize(kernels::activation_row_bytes(type, D));
    weights_q.resize(kernels::activation_row_bytes(type, n_pos));
    scores.resize(static_cast<size_t>(n_pos));
    out.resize(static_cast<size_t>(D));
  }
};

// Nanoseconds of one head's attention over n_pos positions at head dimension D.
double attention_ns(kernels::ThreadPool& pool, int64_t D, int64_t n_pos, int reps) {
  std::vector<HeadCache> caches;
  for (int i = 0; i < pool.size(); ++i) caches.emplace_back(D, n_pos);
  const auto type = gguf::GgmlType::F16;
  const size_t eb = 2;
  const int calls = static_cast<int>(std::max<int64_t>(8, (int64_t(4) << 20) / (D * n_pos)));  // ~4M multiply-adds
  return per_call_ns(pool, calls, reps, [&](int ith) {
    HeadCache& h = caches[static_cast<size_t>(ith)];
    const model::AttentionScratch s{h.scores.data(), h.query_q.data(), h.weights_q.data()};
    model::attend_head(type, D, h.query.data(), h.keys.data(), D * eb, h.values.data(), n_pos * eb, n_pos, 0.125f, s,
                       h.out.data());
  });
}

}  // namespace

VectorWorkRates measure_vector_work(kernels::ThreadPool& pool, int reps) {
  VectorWorkRates r;
  constexpr int64_t kDecodePositions = 64, kPromptPositions = 512;
  for (int i = 0; i < 2; ++i) {
    const int64_t D = 64 * (i + 1);
    const double lo = attention_ns(pool, D, kDecodePositions, reps), hi = attention_ns(pool, D, kPromptPositions, reps);
    r.attention_position_ns[i] = std::max(0.0, (hi - lo) / (kPromptPositions - kDecodePositions));
    r.attention_head_ns[i] = std::max(0.0, lo - r.attention_position_ns[i] * kDecodePositions);
  }
  // A decode token's SwiGLU width and a model's embedding width, per thread.
  constexpr int64_t kSilu = 8192, kNorm = 4096;
  std::vector<std::vector<float>> gate(pool.size(), std::vector<float>(kSilu)), up = gate;
  std::vector<std::vector<float>> x(pool.size(), std::vector<float>(kNorm, 0.5f)), w = x;
  for (auto& g : gate)
    for (int64_t i = 0; i < kSilu; ++i) g[i] = static_cast<float>(i % 97) / 97.0f - 0.5f;
  r.silu_ns = per_call_ns(pool, 200, reps,
                          [&](int ith) {
                            float* g = gate[ith].data();
                            const float* u = up[ith].data();
                            // ForwardPass::gate_by_up's loop; the gate rewritten each call stays finite.
                            for (int64_t i = 0; i < kSilu; ++i) g[i] = model::silu(g[i]) * u[i] + 0.25f;
                          }) /
              kSilu;
  r.norm_ns =
      per_call_ns(pool, 400, reps,
                  [&](int ith) { model::rms_norm(x[ith].data(), w[ith].data(), x[ith].data(), kNorm, 1e-5f); }) /
      kNorm;
  return r;
}

std::string vector_work_method(int reps) {
  return "attention: the engine's attend_head over an F16 cache, head dimensions 64 and 128 at 64 and 512 "
         "positions; element-wise: silu(gate) * up over 8192 and an RMS norm over 4096; each thread of the pool "
         "at its own copy at once, the fastest of " +
         std::to_string(reps) + " reps";
}

}  // namespace clusterctl::tools
