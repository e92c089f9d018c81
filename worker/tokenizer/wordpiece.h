#pragma once
#include <string_view>
#include <vector>

#include "worker/tokenizer/vocab.h"

namespace clusterctl::tokenizer {

// BERT's WordPiece (tokenizer.ggml.model = bert), as Hugging Face's BertNormalizer +
// BertPreTokenizer + WordPiece do it: NFD, accents and control characters dropped, lower
// case; words split at whitespace, punctuation and CJK ideographs; each word cut greedily
// into the longest vocabulary pieces (the GGUF vocabulary writes word starts as "▁x" and
// continuations as "x", where BERT's vocab.txt has "x" and "##x"). A word with no such
// cut becomes the unknown token. Appends to `out`.
void wordpiece_tokenize(const Vocab& vocab, std::string_view text, std::vector<TokenId>& out);

}  // namespace clusterctl::tokenizer
