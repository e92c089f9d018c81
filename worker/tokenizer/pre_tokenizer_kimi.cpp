#include "worker/tokenizer/pre_tokenizer_kimi.h"

#include <unicode/uchar.h>

#include "worker/tokenizer/utf8.h"

namespace clusterctl::tokenizer {
namespace {

// The Han ranges llama.cpp's matcher uses (the CJK ideograph blocks and their extensions).
bool is_han(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2EBEF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

constexpr char32_t kOutside = 0xFFFFFFFF;  // a position past the text

struct Text {
  std::vector<char32_t> cps;
  std::vector<size_t> byte_at;  // byte offset of each code point, and the end

  char32_t at(size_t i) const { return i < cps.size() ? cps[i] : kOutside; }
  bool letter(size_t i) const { return i < cps.size() && u_isalpha(static_cast<UChar32>(cps[i])) && !is_han(cps[i]); }
  bool any_letter(size_t i) const { return i < cps.size() && u_isalpha(static_cast<UChar32>(cps[i])); }
  bool number(size_t i) const { return i < cps.size() && is_number(cps[i]); }
  bool space(size_t i) const { return i < cps.size() && u_isUWhiteSpace(static_cast<UChar32>(cps[i])); }
  // [^\s\p{L}\p{N}]: any other code point, unassigned ones included.
  bool symbol(size_t i) const { return i < cps.size() && !any_letter(i) && !number(i) && !space(i); }
  static bool is_number(char32_t c) {
    const int8_t t = u_charType(static_cast<UChar32>(c));
    return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER;
  }
};

char32_t lower_ascii(char32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

}  // namespace

std::vector<Span> split_kimi_k2(std::string_view s) {
  Text t;
  for (size_t i = 0; i < s.size();) {
    const utf8::Decoded d = utf8::decode(s, i);
    t.cps.push_back(d.valid ? d.cp : utf8::kReplacement);
    t.byte_at.push_back(i);
    i += d.len;
  }
  t.byte_at.push_back(s.size());
  const size_t n = t.cps.size();
  std::vector<Span> out;
  size_t prev = 0;
  auto emit = [&](size_t end) {
    if (end > prev) out.push_back({t.byte_at[prev], t.byte_at[end]});
    prev = end;
  };
  for (size_t pos = 0; pos < n;) {
    const char32_t c = t.at(pos);
    if (is_han(c)) {  // [\p{Han}]+
      while (is_han(t.at(pos))) ++pos;
      emit(pos);
      continue;
    }
    // Words: [^\r\n\p{L}\p{N}]? then letters that are not Han, then 's 't 're 've 'm 'll 'd.
    const bool lead_ok = !(c == '\r' || c == '\n' || t.any_letter(pos) || t.number(pos));
    if (t.letter(pos) || (lead_ok && t.letter(pos + 1))) {
      const bool lead = lead_ok;
      if (lead) ++pos;
      bool letters = false;
      while (t.letter(pos)) letters = true, ++pos;
      if (letters || (!lead && t.letter(pos))) {
        if (!letters) ++pos;
        while (t.letter(pos)) ++pos;
        if (t.at(pos) == '\'' && pos + 1 < n) {
          const char32_t a = lower_ascii(t.at(pos + 1));
          if (a == 's' || a == 't' || a == 'm' || a == 'd') {
            pos += 2;
          } else if (pos + 2 < n) {
            const char32_t b = lower_ascii(t.at(pos + 2));
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) pos += 3;
          }
        }
        emit(pos);
        continue;
      }
      if (lead) --pos;
    }
    if (t.number(pos)) {  // \p{N}{1,3}
      size_t first = pos;
      while (t.number(pos))
        if (++pos - first >= 3) emit(pos), first = pos;
      emit(pos);
      continue;
    }
    // " ?[^\s\p{L}\p{N}]+[\r\n]*"
    const size_t sym = c == ' ' ? pos + 1 : pos;
    if (t.symbol(sym)) {
      pos = sym;
      while (t.symbol(pos)) ++pos;
      while (t.at(pos) == '\r' || t.at(pos) == '\n') ++pos;
      emit(pos);
      continue;
    }
    size_t spaces = 0, last_newline_end = 0;
    while (t.space(pos + spaces)) {
      const char32_t w = t.at(pos + spaces);
      if (w == '\r' || w == '\n') last_newline_end = pos + spaces + 1;
      ++spaces;
    }
    if (last_newline_end > 0) {  // \s*[\r\n]+
      pos = last_newline_end;
    } else if (spaces > 1 && t.at(pos + spaces) != kOutside) {  // \s+(?!\S): leave the last one
      pos += spaces - 1;
    } else if (spaces > 0) {  // \s+
      pos += spaces;
    } else {
      ++pos;  // nothing matched: the character alone
    }
    emit(pos);
  }
  return out;
}

}  // namespace clusterctl::tokenizer
