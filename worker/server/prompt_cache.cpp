#include "worker/server/prompt_cache.h"

#include <algorithm>

#include "worker/common/error.h"

namespace clusterctl::server {

PromptCache::PromptCache(int32_t n_slots) : slots_(static_cast<size_t>(std::max(n_slots, 0))) {}

std::optional<PromptCache::Choice> PromptCache::acquire(const std::vector<int32_t>& prompt, bool reuse) {
  std::optional<Choice> best;
  uint64_t best_used = 0;
  // The last prompt token always runs: its logits give the first generated token.
  const size_t limit = prompt.empty() ? 0 : prompt.size() - 1;
  for (size_t s = 0; s < slots_.size(); ++s) {
    const Slot& slot = slots_[s];
    if (slot.busy) continue;
    size_t common = 0;
    if (reuse) {
      const size_t n = std::min(limit, slot.tokens.size());
      common = static_cast<size_t>(
          std::mismatch(slot.tokens.begin(), slot.tokens.begin() + static_cast<ptrdiff_t>(n), prompt.begin()).first -
          slot.tokens.begin());
    }
    if (!best || common > best->reused || (common == best->reused && slot.last_used < best_used)) {
      best = Choice{static_cast<int32_t>(s), common};
      best_used = slot.last_used;
    }
  }
  if (!best) return std::nullopt;
  Slot& slot = slots_[static_cast<size_t>(best->slot)];
  slot.busy = true;
  slot.tokens.resize(best->reused);
  slot.last_used = ++clock_;
  return best;
}

void PromptCache::record(int32_t slot, size_t pos0, const int32_t* tokens, size_t n) {
  Slot& s = slots_.at(static_cast<size_t>(slot));
  if (s.tokens.size() != pos0) return;
  s.tokens.insert(s.tokens.end(), tokens, tokens + n);
}

void PromptCache::release(int32_t slot) {
  Slot& s = slots_.at(static_cast<size_t>(slot));
  if (!s.busy) throw Error("KV slot " + std::to_string(slot) + " was released twice");
  s.busy = false;
  s.last_used = ++clock_;
}

size_t PromptCache::free_slots() const {
  return static_cast<size_t>(std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.busy; }));
}

}  // namespace clusterctl::server
