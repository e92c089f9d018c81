#pragma once
// A forward-pass batch: tokens from any number of sequences, each with its position and the
// KV-cache slot of its sequence. Decoding one sequence is a batch of one; prompt processing,
// continuous batching and speculative verification are bigger batches of the same thing.
#include <cstdint>
#include <vector>

namespace clusterctl::model {

struct Batch {
  std::vector<int32_t> token;
  std::vector<int32_t> pos;
  std::vector<int32_t> slot;
  std::vector<uint8_t> want_logits;  // 1: the forward pass returns this token's logits
  // Which kernels run the matrices (kernels::Kernels): the first n_decode tokens are generated
  // tokens and take the matrix-vector kernels, the rest are prompt tokens and take the tiles,
  // however many of each there are, so a token's bits do not depend on the batch around it.
  // -1: by batch size (one token: matrix-vector, more: tiles).
  int64_t n_decode = -1;

  void clear() {  // keeps the capacity: reusing a Batch allocates nothing
    token.clear();
    pos.clear();
    slot.clear();
    want_logits.clear();
    n_decode = -1;
  }
  void add(int32_t tok, int32_t position, int32_t kv_slot, bool logits) {
    token.push_back(tok);
    pos.push_back(position);
    slot.push_back(kv_slot);
    want_logits.push_back(logits ? 1 : 0);
  }
  int64_t size() const { return static_cast<int64_t>(token.size()); }
  int64_t n_outputs() const {
    int64_t n = 0;
    for (auto w : want_logits) n += w;
    return n;
  }
};

}  // namespace clusterctl::model
