#pragma once
// The prompt cache of the continuous-batching scheduler: which KV slot a new sequence takes and
// how much of its prompt that slot's cache already holds, as llama-server chooses. Slots keep
// their keys and values after their request ends; a new request takes the free slot whose cache
// shares the longest token prefix with its prompt (the least recently used one when none shares
// any) and prefills only the rest.
//
// Exactness: a slot records only the tokens whose keys and values were computed as PROMPT tokens
// and whose step completed. Generated tokens are computed with the matrix-vector kernels, a
// prompt's with the tiles (model::Batch::n_decode), so the KV of an earlier answer differs in its
// last bits from what prefilling the same text computes; leaving them out of the record makes a
// reused prefix bit for bit what a whole-prompt prefill writes, and the answer the same tokens.
// A cancelled or failed request leaves exactly the prompt chunks that completed, all valid.
//
// Tensor parallelism: only rank 0 keeps this record. Its choice reaches the other ranks as the
// slot and positions of the step's tokens (parallel::StepToken): a sequence reusing n tokens
// starts at position n in its slot, and every rank's slot holds the same prefix because every
// rank ran the same earlier steps.
#include <cstdint>
#include <optional>
#include <vector>

namespace clusterctl::server {

class PromptCache {
 public:
  explicit PromptCache(int32_t n_slots);

  struct Choice {
    int32_t slot = -1;
    size_t reused = 0;  // prompt tokens already in the slot's cache: the sequence starts there
  };
  // Takes a free slot for `prompt` (none free: nullopt). With `reuse`, the one holding the longest
  // common prefix (ties: the least recently used), at most all but the prompt's last token, which
  // runs again for its logits; without, the least recently used one and nothing reused. The
  // slot's record is cut to what is reused: the sequence overwrites the positions after it.
  std::optional<Choice> acquire(const std::vector<int32_t>& prompt, bool reuse);
  // A completed step wrote prompt tokens [pos0, pos0 + n) of `slot`: they join its record when
  // they continue it (anything else would leave a gap and is not recorded).
  void record(int32_t slot, size_t pos0, const int32_t* tokens, size_t n);
  // The slot's sequence ended: the slot is free again, its record kept.
  void release(int32_t slot);

  size_t free_slots() const;
  const std::vector<int32_t>& cached(int32_t slot) const { return slots_.at(static_cast<size_t>(slot)).tokens; }

 private:
  struct Slot {
    std::vector<int32_t> tokens;  // positions 0 .. size-1 of this slot's cache, valid prompt KV
    bool busy = false;
    uint64_t last_used = 0;
  };
  std::vector<Slot> slots_;
  uint64_t clock_ = 0;
};

}  // namespace clusterctl::server
