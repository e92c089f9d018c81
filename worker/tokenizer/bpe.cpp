#include "worker/tokenizer/bpe.h"

#include <queue>

#include "worker/tokenizer/utf8.h"

namespace clusterctl::tokenizer {
namespace {

struct Symbol {
  int prev;
  int next;
  size_t begin;
  size_t n;
  TokenId id;  // the token this piece is, kNoToken if none (it then never merges)
};

struct Bigram {
  int left;
  int right;
  int rank;
  size_t size;
};

// Lowest rank first; on a tie the leftmost pair.
struct LowerPriority {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

void bpe_tokenize_word(const Vocab& vocab, std::string_view word, bool ignore_merges, std::vector<TokenId>& out) {
  if (word.empty()) return;
  if (ignore_merges) {
    if (TokenId id = vocab.find(word); id != kNoToken) {
      out.push_back(id);
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (size_t i = 0; i < word.size();) {
    size_t len = utf8::decode(word, i).len;
    int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, i + len == word.size() ? -1 : index + 1, i, len, vocab.find(word.substr(i, len))});
    i += len;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, LowerPriority> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    int rank = vocab.merge_rank(l.id, r.id);
    if (rank < 0) return;
    queue.push({left, right, rank, l.n + r.n});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale pair
    l.n += r.n;
    l.id = vocab.find(word.substr(l.begin, l.n));
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  for (int i = 0; i != -1; i = symbols[i].next) {
    if (symbols[i].id != kNoToken) {
      out.push_back(symbols[i].id);
      continue;
    }
    std::string_view piece = word.substr(symbols[i].begin, symbols[i].n);
    // A piece no merge produced and no token names: its single bytes, where they are tokens.
    for (char c : piece)
      if (TokenId id = vocab.find(std::string_view(&c, 1)); id != kNoToken) out.push_back(id);
  }
}

}  // namespace clusterctl::tokenizer
