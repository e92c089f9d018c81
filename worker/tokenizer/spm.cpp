#include "worker/tokenizer/spm.h"

#include <queue>

#include "worker/tokenizer/utf8.h"

namespace clusterctl::tokenizer {
namespace {

// A run of the text that is (so far) one piece; merged-away symbols keep n = 0.
struct Symbol {
  int prev;
  int next;
  size_t begin;
  size_t n;
};

struct Bigram {
  int left;
  int right;
  float score;
  size_t size;
};

// Highest score first; on a tie the leftmost pair, so results do not depend on heap order.
struct LowerPriority {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

void append_bytes(const Vocab& vocab, std::string_view piece, std::vector<TokenId>& out) {
  for (unsigned char b : piece) {
    TokenId id = vocab.byte_token(b);
    if (id == kNoToken) id = vocab.unk();  // a vocabulary without byte fallback
    if (id != kNoToken) out.push_back(id);
  }
}

}  // namespace

void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<TokenId>& out) {
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    // Invalid UTF-8 bytes become one-byte symbols; they never form a token and end as bytes.
    size_t len = utf8::decode(text, i).len;
    int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, i + len == text.size() ? -1 : index + 1, i, len});
    i += len;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, LowerPriority> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    TokenId id = vocab.find(text.substr(l.begin, l.n + r.n));
    if (id == kNoToken) return;
    queue.push({left, right, vocab.score(id), l.n + r.n});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    // Stale: one side was merged elsewhere since this pair was queued.
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    std::string_view piece = text.substr(symbols[i].begin, symbols[i].n);
    TokenId id = vocab.find(piece);
    if (id != kNoToken)
      out.push_back(id);
    else
      append_bytes(vocab, piece, out);
  }
}

}  // namespace clusterctl::tokenizer
