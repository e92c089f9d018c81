#pragma once
#include <string_view>
#include <vector>

#include "worker/tokenizer/vocab.h"

namespace clusterctl::tokenizer {

// A part of the input: either a special token found by its text, or a byte range of plain
// text still to be tokenized.
struct Fragment {
  TokenId token;  // kNoToken for plain text
  size_t begin;
  size_t end;
};

// Finds special-token texts in `text`, longest tokens first. User-defined tokens are always
// matched (as Hugging Face treats added non-special tokens); control and unknown tokens only
// with `parse_special`, otherwise their text is plain text.
std::vector<Fragment> split_special_tokens(const Vocab& vocab, std::string_view text, bool parse_special);

}  // namespace clusterctl::tokenizer
