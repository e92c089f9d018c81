#pragma once
// The merge loop SentencePiece (spm.cpp) and byte-level BPE (bpe.cpp) share: the text as a
// linked list of UTF-8 characters, then adjacent symbols merged into one, best pair first.
#include <optional>
#include <queue>
#include <string_view>
#include <vector>

#include "worker/tokenizer/utf8.h"

namespace clusterctl::tokenizer {

// A run of the text that is (so far) one piece; merged-away symbols keep n = 0.
struct MergeSymbol {
  int prev;
  int next;
  size_t begin;
  size_t n;
};

// `text` as one symbol per UTF-8 character (an invalid byte: a symbol of its own), linked in order.
inline std::vector<MergeSymbol> split_symbols(std::string_view text) {
  std::vector<MergeSymbol> symbols;
  symbols.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t len = utf8::decode(text, i).len;
    int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, i + len == text.size() ? -1 : index + 1, i, len});
    i += len;
  }
  return symbols;
}

// Merges adjacent symbols while a pair can merge. `pair_priority(left, right)` (symbol indices)
// is nullopt for a pair that cannot merge, else its Priority: the highest merges first, on a tie
// the leftmost pair, so the result does not depend on heap order. `merged(left)` is called after
// the left symbol absorbed its right neighbour. The live symbols stay linked from index 0.
template <typename Priority, typename PairPriority, typename Merged>
void merge_symbols(std::vector<MergeSymbol>& symbols, PairPriority pair_priority, Merged merged) {
  struct Bigram {
    int left;
    int right;
    Priority priority;
    size_t size;
  };
  struct LowerPriority {
    bool operator()(const Bigram& a, const Bigram& b) const {
      return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
    }
  };
  std::priority_queue<Bigram, std::vector<Bigram>, LowerPriority> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    std::optional<Priority> priority = pair_priority(left, right);
    if (!priority) return;
    queue.push({left, right, *priority, symbols[left].n + symbols[right].n});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    MergeSymbol& l = symbols[b.left];
    MergeSymbol& r = symbols[b.right];
    // Stale: one side was merged elsewhere since this pair was queued.
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    merged(b.left);
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
}

}  // namespace clusterctl::tokenizer
