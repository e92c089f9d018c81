#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace clusterctl::tokenizer::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;

// One decoded step of UTF-8: the code point and how many bytes it used. An invalid or
// truncated sequence decodes as one byte with `valid = false` (the caller decides what to do
// with that byte), so decoding always makes progress and never reads past the end.
struct Decoded {
  char32_t cp;
  size_t len;
  bool valid;
};
Decoded decode(std::string_view s, size_t pos);

void append(std::string& out, char32_t cp);

// Length of the longest prefix of `s` that does not end inside a UTF-8 sequence that could
// still be completed by more bytes. Invalid bytes count as complete (they never will be).
size_t complete_prefix(std::string_view s);

// `s` with every invalid byte replaced by U+FFFD, so it can be printed or put in JSON.
std::string sanitize(std::string_view s);

}  // namespace clusterctl::tokenizer::utf8
