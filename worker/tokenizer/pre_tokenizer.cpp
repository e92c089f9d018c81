#include "worker/tokenizer/pre_tokenizer.h"

#include <unicode/regex.h>
#include <unicode/unistr.h>

#include <algorithm>

#include "worker/common/error.h"
#include "worker/tokenizer/pre_tokenizer_kimi.h"
#include "worker/tokenizer/utf8.h"

namespace clusterctl::tokenizer {
namespace {

// The patterns below are the ones the models' Hugging Face tokenizer.json files use (as
// llama.cpp lists them per tokenizer.ggml.pre). They are written with \s and \S, which
// to_icu() turns into the Unicode White_Space property: ICU's own \s lacks U+000B and U+0085.

// GPT-2's split: contractions, letters, digits, other symbols, each with an optional leading
// space; runs of whitespace keep their last space for the next word.
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";

// Llama 3 (tiktoken cl100k style): digits in groups of up to three, newlines kept together.
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Qwen 2: as Llama 3 but one digit per piece.
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// CJK ideographs and Hangul, and the block of scripts between, split off as runs (DeepSeek).
constexpr const char* kDeepseekCjk = "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+";

// DeepSeek-V3/R1: digits in threes, then runs of CJK ideographs and kana, then words (letters
// with their marks, an ASCII punctuation mark leading a Latin word), punctuation and whitespace.
constexpr const char* kDeepseekV3Words =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct Family {
  std::vector<std::string_view> names;
  std::vector<const char*> patterns;
  bool ignore_merges = false;
  // A split no regex of ICU's can write; replaces the patterns.
  std::vector<Span> (*custom)(std::string_view) = nullptr;
};

const std::vector<Family>& families() {
  static const std::vector<Family> kFamilies = {
      {{"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3"}, {kLlama3}, true},
      {{"dbrx", "smaug-bpe", "chatglm-bpe", "glm4"}, {kLlama3}},
      {{"qwen2", "stablelm2", "deepseek-r1-qwen", "megrez"}, {kQwen2}},
      {{"deepseek-llm"},
       {"[\\r\\n]",
        // Cased letters (Unicode L&), written as code points so no editor can normalize them.
        "\\s?["
        "A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}"
        "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-"
        "\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-"
        "\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-"
        "\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-"
        "\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"
        "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-"
        "\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-"
        "\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}"
        "\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}"
        "\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}"
        "\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-"
        "\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-"
        "\\x{FF5A}"
        "\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
        "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+",
        "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
        // "$" in the original; each piece is matched on its own, so that is the piece's end.
        "\\s+\\z", kDeepseekCjk, "\\p{N}+"}},
      {{"deepseek-v3"},
       {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+", kDeepseekV3Words}},
      {{"kimi-k2"}, {}, false, split_kimi_k2},
      {{"deepseek-coder"}, {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", kDeepseekCjk, "\\p{N}"}},
      {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}},
      {{"gpt-2", "mpt", "olmo", "phi-2", "jais", "roberta-bpe", "jina-es", "jina-de", "jina-v1-en", "jina-v2-es",
        "jina-v2-de", "jina-v2-code", "gigachat", "exaone4"},
       {kGpt2}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"}, {R"(\p{N})", kGpt2}},
  };
  return kFamilies;
}

std::string to_icu(std::string_view pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      char c = pattern[i + 1];
      if (c == 's')
        out += "\\p{White_Space}";
      else if (c == 'S')
        out += "\\P{White_Space}";
      else
        out.append(pattern.substr(i, 2));
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

// The text as UTF-16 for ICU, with the byte offset of every UTF-16 index (one past the end
// included), so matches map back onto the original bytes.
struct Utf16Text {
  icu::UnicodeString text;
  std::vector<size_t> byte_offset;
};

Utf16Text to_utf16(std::string_view s) {
  Utf16Text t;
  t.byte_offset.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    utf8::Decoded d = utf8::decode(s, i);
    t.text.append(static_cast<UChar32>(d.cp));
    while (t.byte_offset.size() < static_cast<size_t>(t.text.length())) t.byte_offset.push_back(i);
    i += d.len;
  }
  t.byte_offset.push_back(s.size());
  return t;
}

}  // namespace

struct PreTokenizer::Patterns {
  std::vector<std::unique_ptr<icu::RegexPattern>> list;
};

PreTokenizer::PreTokenizer(std::string_view pre_name) : patterns_(std::make_unique<Patterns>()) {
  const Family* chosen = &families().front();
  recognized_ = false;
  for (const auto& f : families()) {
    if (std::find(f.names.begin(), f.names.end(), pre_name) != f.names.end()) {
      chosen = &f;
      recognized_ = true;
      break;
    }
  }
  ignore_merges_ = chosen->ignore_merges;
  custom_ = chosen->custom;
  for (const char* p : chosen->patterns) {
    UErrorCode status = U_ZERO_ERROR;
    UParseError where{};
    std::unique_ptr<icu::RegexPattern> compiled(
        icu::RegexPattern::compile(icu::UnicodeString::fromUTF8(to_icu(p)), 0, where, status));
    if (U_FAILURE(status))
      throw Error("pre-tokenizer '" + std::string(pre_name) + "': ICU cannot compile /" + p + "/ (" +
                  u_errorName(status) + " at offset " + std::to_string(where.offset) + ")");
    patterns_->list.push_back(std::move(compiled));
  }
}

PreTokenizer::~PreTokenizer() = default;

std::vector<Span> PreTokenizer::split(std::string_view text) const {
  if (text.empty()) return {};
  if (custom_) return custom_(text);
  Utf16Text u = to_utf16(text);
  // Pieces as UTF-16 ranges while the patterns run.
  std::vector<std::pair<int32_t, int32_t>> pieces{{0, u.text.length()}};
  std::vector<std::pair<int32_t, int32_t>> next;
  for (const auto& pattern : patterns_->list) {
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<icu::RegexMatcher> m(pattern->matcher(u.text, status));
    if (U_FAILURE(status)) throw Error(std::string("pre-tokenizer: ICU matcher failed: ") + u_errorName(status));
    next.clear();
    for (auto [begin, end] : pieces) {
      m->region(begin, end, status);
      int32_t pos = begin;
      while (m->find(status) && U_SUCCESS(status)) {
        int32_t s = m->start(status), e = m->end(status);
        if (e == s) continue;  // empty matches split nothing
        if (s > pos) next.emplace_back(pos, s);
        next.emplace_back(s, e);
        pos = e;
      }
      if (U_FAILURE(status)) throw Error(std::string("pre-tokenizer: ICU match failed: ") + u_errorName(status));
      if (pos < end) next.emplace_back(pos, end);
    }
    pieces.swap(next);
  }
  std::vector<Span> spans;
  spans.reserve(pieces.size());
  for (auto [b, e] : pieces) spans.push_back({u.byte_offset[b], u.byte_offset[e]});
  return spans;
}

std::vector<std::string> PreTokenizer::known_names() {
  std::vector<std::string> names;
  for (const auto& f : families())
    for (auto n : f.names) names.emplace_back(n);
  return names;
}

}  // namespace clusterctl::tokenizer
