#pragma once
// One query head of one token attending over its cached positions, as ForwardPass::attention
// runs it, and how that work is cut among the pool's threads: the code the engine runs, the probe
// times (worker/tools/speed_probe.cpp: doctor's attention figure) and the planner counts
// (controller/placement/throughput_model.cpp), so the three cannot drift apart.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "worker/kernels/blocks.h"  // kernels.h uses fp16_t without including it
#include "worker/kernels/kernels.h"

namespace clusterctl::model {

// A thread's scratch for attend_head: the scores, then the query and the weights converted to the
// cache's activation type.
struct AttentionScratch {
  float* scores = nullptr;  // n_pos floats
  void* query = nullptr;    // kernels::activation_row_bytes(type, D)
  void* weights = nullptr;  // kernels::activation_row_bytes(type, n_pos)
};

// out[0, D) = softmax(scale * K q) V over n_pos positions: keys one row of D per position
// (key_stride bytes apart), values one row per dimension over positions (value_stride apart).
inline void attend_head(gguf::GgmlType type, int64_t D, const float* q, const void* keys, size_t key_stride,
                        const void* values, size_t value_stride, int64_t n_pos, float scale, const AttentionScratch& s,
                        float* out) {
  float* scores = s.scores;
  kernels::quantize_activations(type, q, s.query, D);
  kernels::vec_dots(type, D, keys, key_stride, n_pos, s.query, scores);
  float mx = -INFINITY;
  for (int64_t j = 0; j < n_pos; ++j) {
    scores[j] *= scale;
    mx = std::max(mx, scores[j]);
  }
  // The exps first, then their sum: with the sum in the same loop every exp call waited on it.
  for (int64_t j = 0; j < n_pos; ++j) scores[j] = std::exp(scores[j] - mx);
  double sum = 0;
  for (int64_t j = 0; j < n_pos; ++j) sum += scores[j];
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < n_pos; ++j) scores[j] *= inv;
  kernels::quantize_activations(type, scores, s.weights, n_pos);
  kernels::vec_dots(type, n_pos, values, value_stride, D, s.weights, out);
}

// Multiply-adds below which attention, or the router, runs on the calling thread alone.
constexpr int64_t kInlineAttentionWork = 1 << 15;

// Whether a pass's attention wakes the pool: `positions` summed over the batch's tokens, each
// token attending its position + 1 of them, for `heads` query heads of D dimensions. Waking the
// pool costs more than a small attention (short contexts, tiny models).
inline bool attention_on_pool(int64_t positions, int64_t heads, int64_t D, int pool_threads) {
  return pool_threads > 1 && positions * heads * D >= kInlineAttentionWork;
}

// The items (token-major: token t's heads are items t * heads ...) thread `ith` of `nth` runs:
// equal runs of consecutive items, so the batch's later tokens, with more positions each, fall to
// the last threads.
struct ItemRange {
  int64_t begin = 0, end = 0;
};
inline ItemRange attention_items(int64_t n_items, int ith, int nth) {
  const int64_t chunk = (n_items + nth - 1) / nth;
  const int64_t begin = std::min(n_items, chunk * ith);
  return {begin, std::min(n_items, begin + chunk)};
}

}  // namespace clusterctl::model
