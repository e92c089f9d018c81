#pragma once
// How ForwardPass runs a layer's mixture of experts and its latent attention, and the thread-pool
// meetings that costs, and how it cuts a prompt to overlap its all-reduces: the functions the
// engine chooses its path by and the planner counts a pass's work by
// (controller/placement/throughput_model.cpp), so the two cannot drift apart.
#include <algorithm>
#include <cstdint>

namespace clusterctl::model {

// A prompt's row-parallel matmul and its all-reduce go in pieces of this many tokens where the
// communicator overlaps (ForwardPass::add_row_parallel), each piece's sums travelling while the
// next piece computes; 0: one piece. Whole 64-token tiles, at most 8 pieces, for a pass of at
// least two pieces of prompt tokens (`prompt_tokens`: those not on the matrix-vector kernels).
inline constexpr int64_t kOverlapPieceTokens = 64, kOverlapPieces = 8;
inline int64_t overlap_piece_tokens(int64_t tokens, int64_t prompt_tokens) {
  if (prompt_tokens < 2 * kOverlapPieceTokens) return 0;
  const int64_t share = (tokens + kOverlapPieces - 1) / kOverlapPieces;
  return (std::max(share, kOverlapPieceTokens) + kOverlapPieceTokens - 1) / kOverlapPieceTokens * kOverlapPieceTokens;
}

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

// One decode token alone on a pool of several threads runs deepseek2's latent attention as
// claimed work (ForwardPass::latent_attention): the q (or low-rank q_a) and kv_a row slices in one
// meeting, and a thread that claims a head runs its k_b, its attention and its v_b in another.
inline bool latent_heads_in_one_meeting(int64_t tokens, int64_t n_mv, int pool_threads) {
  return tokens == 1 && n_mv == 1 && pool_threads > 1;
}

// A layer's latent attention matmuls that meet the pool, over `heads` query heads: q and kv_a
// (one meeting, or two), q_b where the query is low-rank, k_b and v_b (one meeting for every
// head, or one per head each) and the output projection. A batch's attention over the cache,
// once per layer besides, is not a matmul.
inline double latent_attention_meetings(int64_t tokens, int64_t n_mv, int pool_threads, bool low_rank_q, double heads) {
  const double q_b = low_rank_q ? 1 : 0;
  if (latent_heads_in_one_meeting(tokens, n_mv, pool_threads)) return 1 + q_b + 1 + 1;
  return 2 + q_b + 2 * heads + 1;
}

}  // namespace clusterctl::model
