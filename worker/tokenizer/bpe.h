#pragma once
#include <string_view>
#include <vector>

#include "worker/tokenizer/vocab.h"

namespace clusterctl::tokenizer {

// Byte-level BPE on one pre-tokenized word, already written in the byte-level alphabet:
// starting from single characters, repeatedly apply the lowest-ranked merge among adjacent
// pairs. With `ignore_merges`, a word that is a token as a whole is taken directly (Llama 3).
// Appends to `out`.
void bpe_tokenize_word(const Vocab& vocab, std::string_view word, bool ignore_merges, std::vector<TokenId>& out);

}  // namespace clusterctl::tokenizer
