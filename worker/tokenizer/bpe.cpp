#include "worker/tokenizer/bpe.h"

#include "worker/tokenizer/symbol_merge.h"

namespace clusterctl::tokenizer {

void bpe_tokenize_word(const Vocab& vocab, std::string_view word, bool ignore_merges, std::vector<TokenId>& out) {
  if (word.empty()) return;
  if (ignore_merges) {
    if (TokenId id = vocab.find(word); id != kNoToken) {
      out.push_back(id);
      return;
    }
  }
  std::vector<MergeSymbol> symbols = split_symbols(word);
  // The token each symbol is, kNoToken if none (it then never merges).
  std::vector<TokenId> ids(symbols.size());
  for (size_t i = 0; i < symbols.size(); ++i) ids[i] = vocab.find(word.substr(symbols[i].begin, symbols[i].n));

  // Lowest merge rank first: the priority is the negated rank.
  merge_symbols<int>(
      symbols,
      [&](int left, int right) -> std::optional<int> {
        int rank = vocab.merge_rank(ids[left], ids[right]);
        if (rank < 0) return std::nullopt;
        return -rank;
      },
      [&](int left) { ids[left] = vocab.find(word.substr(symbols[left].begin, symbols[left].n)); });

  for (int i = 0; i != -1; i = symbols[i].next) {
    if (ids[i] != kNoToken) {
      out.push_back(ids[i]);
      continue;
    }
    std::string_view piece = word.substr(symbols[i].begin, symbols[i].n);
    // A piece no merge produced and no token names: its single bytes, where they are tokens.
    for (char c : piece)
      if (TokenId id = vocab.find(std::string_view(&c, 1)); id != kNoToken) out.push_back(id);
  }
}

}  // namespace clusterctl::tokenizer
