#include "worker/tokenizer/spm.h"

#include "worker/tokenizer/symbol_merge.h"

namespace clusterctl::tokenizer {
namespace {

void append_bytes(const Vocab& vocab, std::string_view piece, std::vector<TokenId>& out) {
  for (unsigned char b : piece) {
    TokenId id = vocab.byte_token(b);
    if (id == kNoToken) id = vocab.unk();  // a vocabulary without byte fallback
    if (id != kNoToken) out.push_back(id);
  }
}

}  // namespace

void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<TokenId>& out) {
  // Invalid UTF-8 bytes become one-byte symbols; they never form a token and end as bytes.
  std::vector<MergeSymbol> symbols = split_symbols(text);
  // Highest score first: a pair merges when the two pieces together are a token.
  merge_symbols<float>(
      symbols,
      [&](int left, int right) -> std::optional<float> {
        TokenId id = vocab.find(text.substr(symbols[left].begin, symbols[left].n + symbols[right].n));
        if (id == kNoToken) return std::nullopt;
        return vocab.score(id);
      },
      [](int) {});

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
