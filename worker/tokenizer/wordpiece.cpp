#include "worker/tokenizer/wordpiece.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <string>

#include "worker/common/error.h"
#include "worker/tokenizer/utf8.h"

namespace clusterctl::tokenizer {
namespace {

constexpr std::string_view kWordStart = "\xE2\x96\x81";  // ▁
constexpr size_t kMaxWordChars = 100;                    // longer words are unknown (as in BERT)

// The CJK ranges BERT splits into one-character words.
bool cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_other(int8_t category) {
  return category == U_CONTROL_CHAR || category == U_FORMAT_CHAR || category == U_PRIVATE_USE_CHAR ||
         category == U_SURROGATE || category == U_UNASSIGNED;
}

bool is_punctuation(char32_t c, int8_t category) {
  // ASCII symbols such as $ + < = > ^ ` | ~ count as punctuation for BERT.
  bool ascii_symbol = c < 0x7F && (category == U_MATH_SYMBOL || category == U_CURRENCY_SYMBOL ||
                                   category == U_MODIFIER_SYMBOL || category == U_OTHER_SYMBOL);
  bool unicode_punct = category == U_CONNECTOR_PUNCTUATION || category == U_DASH_PUNCTUATION ||
                       category == U_START_PUNCTUATION || category == U_END_PUNCTUATION ||
                       category == U_INITIAL_PUNCTUATION || category == U_FINAL_PUNCTUATION ||
                       category == U_OTHER_PUNCTUATION;
  return ascii_symbol || unicode_punct;
}

// Normalized words, each as UTF-8 with its length in characters.
struct Word {
  std::string text;
  size_t chars = 0;
};

std::vector<Word> split_words(std::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(status);
  if (U_FAILURE(status)) throw Error(std::string("WordPiece: ICU has no NFD normalizer: ") + u_errorName(status));
  icu::UnicodeString u;
  for (size_t i = 0; i < text.size();) {
    utf8::Decoded d = utf8::decode(text, i);
    u.append(static_cast<UChar32>(d.cp));  // invalid bytes as U+FFFD, dropped below
    i += d.len;
  }
  icu::UnicodeString decomposed = nfd->normalize(u, status);
  if (U_FAILURE(status)) throw Error(std::string("WordPiece: NFD failed: ") + u_errorName(status));

  std::vector<Word> words(1);
  auto end_word = [&] {
    if (!words.back().text.empty()) words.emplace_back();
  };
  for (int32_t i = 0; i < decomposed.length(); i = decomposed.moveIndex32(i, 1)) {
    char32_t c = static_cast<char32_t>(decomposed.char32At(i));
    if (u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE)) {
      end_word();
      continue;
    }
    int8_t category = u_charType(static_cast<UChar32>(c));
    if (c == 0 || c == utf8::kReplacement || is_other(category) || category == U_NON_SPACING_MARK) continue;
    char32_t lower = static_cast<char32_t>(u_tolower(static_cast<UChar32>(c)));
    if (is_punctuation(c, category) || cjk_ideograph(c)) {
      end_word();
      utf8::append(words.back().text, lower);
      words.back().chars = 1;
      words.emplace_back();
    } else {
      utf8::append(words.back().text, lower);
      ++words.back().chars;
    }
  }
  if (words.back().text.empty()) words.pop_back();
  return words;
}

}  // namespace

void wordpiece_tokenize(const Vocab& vocab, std::string_view text, std::vector<TokenId>& out) {
  const size_t max_len = vocab.max_token_bytes();
  std::string prefixed;
  for (const Word& w : split_words(text)) {
    size_t first = out.size();
    bool whole = w.chars <= kMaxWordChars;
    prefixed.assign(kWordStart);
    prefixed += w.text;
    for (size_t i = 0; whole && i < prefixed.size();) {
      size_t found = 0;
      for (size_t j = std::min(prefixed.size(), i + max_len); j > i; --j) {
        if (TokenId id = vocab.find(std::string_view(prefixed).substr(i, j - i)); id != kNoToken) {
          out.push_back(id);
          found = j;
          break;
        }
      }
      if (!found) whole = false;
      i = found;
    }
    if (!whole) {
      out.resize(first);
      if (vocab.unk() != kNoToken) out.push_back(vocab.unk());
    }
  }
}

}  // namespace clusterctl::tokenizer
