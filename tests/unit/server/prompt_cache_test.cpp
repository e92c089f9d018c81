// The prompt cache's choice of KV slot (worker/server/prompt_cache.h): the free slot with the
// longest common prefix, least recently used among equals, never the whole prompt, only what
// completed steps recorded.
#include <gtest/gtest.h>

#include "worker/server/prompt_cache.h"

namespace clusterctl::server {
namespace {

using Tokens = std::vector<int32_t>;

// Runs a request through `slot`: its whole prompt recorded, then released.
void serve(PromptCache& cache, int32_t slot, const Tokens& prompt) {
  cache.record(slot, cache.cached(slot).size(), prompt.data() + cache.cached(slot).size(),
               prompt.size() - cache.cached(slot).size());
  cache.release(slot);
}

TEST(PromptCache, TakesTheFreeSlotWithTheLongestPrefix) {
  PromptCache cache(3);
  const Tokens a{1, 2, 3, 4, 5}, b{1, 2, 9, 9}, a2{1, 2, 3, 4, 7, 8};
  auto c = cache.acquire(a, true);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->reused, 0u);
  serve(cache, c->slot, a);
  const int32_t slot_a = c->slot;
  c = cache.acquire(b, true);  // shares 2 tokens with a: takes a's slot
  EXPECT_EQ(c->slot, slot_a);
  EXPECT_EQ(c->reused, 2u);
  serve(cache, c->slot, b);
  c = cache.acquire(a2, true);
  EXPECT_EQ(c->slot, slot_a);
  EXPECT_EQ(c->reused, 2u);
  EXPECT_EQ(cache.cached(slot_a), (Tokens{1, 2}));  // cut to what is reused
  serve(cache, c->slot, a2);
  c = cache.acquire(a2, true);  // the same prompt again: all but its last token
  EXPECT_EQ(c->reused, a2.size() - 1);
  EXPECT_EQ(cache.free_slots(), 2u);
  cache.release(c->slot);
}

TEST(PromptCache, EvictsTheLeastRecentlyUsedAndBusySlotsAreNotShared) {
  PromptCache cache(2);
  const Tokens a{1, 2, 3}, b{4, 5, 6}, c{7, 8, 9};
  auto x = cache.acquire(a, true);
  auto y = cache.acquire(a, true);  // a's slot is busy: the other one, nothing reused
  EXPECT_NE(x->slot, y->slot);
  EXPECT_EQ(y->reused, 0u);
  EXPECT_FALSE(cache.acquire(a, true));  // none free
  serve(cache, x->slot, a);
  serve(cache, y->slot, b);
  auto z = cache.acquire(c, true);  // no prefix anywhere: the least recently used (a's)
  EXPECT_EQ(z->slot, x->slot);
  serve(cache, z->slot, c);
  EXPECT_EQ(cache.acquire(a, true)->reused, 0u);  // a was evicted
}

TEST(PromptCache, NoReuseWhenNotAskedAndOnlyRecordedStepsCount) {
  PromptCache cache(1);
  const Tokens a{1, 2, 3, 4, 5, 6};
  auto x = cache.acquire(a, true);
  // A request cancelled after its first chunk: only that chunk is in the record.
  cache.record(x->slot, 0, a.data(), 3);
  cache.record(x->slot, 4, a.data() + 4, 2);  // a gap: not recorded
  cache.release(x->slot);
  EXPECT_EQ(cache.cached(0), (Tokens{1, 2, 3}));
  EXPECT_EQ(cache.acquire(a, false)->reused, 0u);
  EXPECT_TRUE(cache.cached(0).empty());  // cache_prompt false overwrites from position 0
}

}  // namespace
}  // namespace clusterctl::server
