#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clusterctl::tokenizer {

// A byte range [begin, end) of the text being tokenized.
struct Span {
  size_t begin;
  size_t end;
};

// The regex stage of byte-level BPE, chosen by tokenizer.ggml.pre: a sequence of patterns,
// each splitting every piece the previous one left into matches and the gaps between them
// (both kept, as Hugging Face's Split(..., "isolated") does). Implemented with ICU regexes,
// which have \p{L}/\p{N}, lookahead and (?i:...).
class PreTokenizer {
 public:
  // Unknown names fall back to the GPT-2-era default split, as llama.cpp does; recognized()
  // tells the caller so it can warn.
  explicit PreTokenizer(std::string_view pre_name);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  bool recognized() const { return recognized_; }
  // Llama 3 style: a word that is a token as a whole is taken as is, without merging.
  bool ignore_merges() const { return ignore_merges_; }

  // Splits UTF-8 text into pieces covering it exactly. Invalid UTF-8 bytes are matched as
  // U+FFFD but keep their place, so the caller can still byte-encode them.
  std::vector<Span> split(std::string_view text) const;

  // Names this class knows, for error messages and tests.
  static std::vector<std::string> known_names();

 private:
  struct Patterns;  // the compiled ICU patterns; ICU headers stay out of this one
  std::unique_ptr<Patterns> patterns_;
  bool recognized_ = true;
  bool ignore_merges_ = false;
  std::vector<Span> (*custom_)(std::string_view) = nullptr;  // a hand-written split (kimi-k2)
};

}  // namespace clusterctl::tokenizer
