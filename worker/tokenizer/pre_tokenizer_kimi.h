#pragma once
#include <string_view>
#include <vector>

#include "worker/tokenizer/pre_tokenizer.h"

namespace clusterctl::tokenizer {

// Kimi-K2's split (tokenization_kimi.py's pattern, which needs character-class intersection
// "letters but not Han" that ICU and std::regex lack), as llama.cpp 3f545bec's hand-written
// matcher does it: Han runs; words of non-Han letters with an optional leading non-letter and
// an English contraction; digits in threes; punctuation runs with an optional leading space and
// trailing newlines; whitespace as Llama 3 splits it.
std::vector<Span> split_kimi_k2(std::string_view text);

}  // namespace clusterctl::tokenizer
