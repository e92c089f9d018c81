#pragma once
#include <string_view>
#include <vector>

#include "worker/tokenizer/vocab.h"

namespace clusterctl::tokenizer {

// SentencePiece-style BPE (tokenizer.ggml.model = llama): starting from single characters,
// repeatedly merge the adjacent pair whose concatenation is the highest-scoring token; what
// is left that is no token falls back to <0xXX> byte tokens. `text` has its spaces already
// replaced by ▁. Appends to `out`.
void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<TokenId>& out);

}  // namespace clusterctl::tokenizer
