#pragma once
// How ForwardPass::feed_forward runs a layer's mixture of experts, and the thread-pool meetings
// that costs: one function that the engine chooses its path by and the planner counts a pass's
// meetings by (controller/placement/throughput_model.cpp), so the two cannot drift apart.
#include <cstdint>

namespace clusterctl::model {

// One decode token alone on a pool of several threads runs its routed and shared experts as row
// slices in two meetings (ForwardPass::experts_one_token: every gate and up row, then every down
// row); anything else runs expert by expert (ForwardPass::experts).
inline bool experts_in_two_meetings(int64_t tokens, int64_t n_mv, int pool_threads, int64_t n_expert_used) {
  return tokens == 1 && n_mv == 1 && pool_threads > 1 && n_expert_used <= 64;
}

// A layer's meetings for a pass of `tokens` tokens (`n_mv` of them with the matrix-vector
// kernels) where `experts_with_tokens` of the rank's routed experts have a token: two, or three
// (gate, up, down) for each such expert and three for the shared experts beside them.
inline double expert_layer_meetings(int64_t tokens, int64_t n_mv, int pool_threads, int64_t n_expert_used,
                                    double experts_with_tokens, bool shared_experts) {
  if (experts_in_two_meetings(tokens, n_mv, pool_threads, n_expert_used)) return 2;
  return 3 * experts_with_tokens + (shared_experts ? 3 : 0);
}

}  // namespace clusterctl::model
