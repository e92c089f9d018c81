// The regex pre-tokenizers chosen by tokenizer.ggml.pre, including the ones without a vocab
// file in the shared folder (qwen2, deepseek-coder, command-r, smollm ...).
#include <gtest/gtest.h>

#include <random>

#include "worker/tokenizer/pre_tokenizer.h"

namespace clusterctl::tokenizer {
namespace {

using Pieces = std::vector<std::string>;

Pieces split(std::string_view pre, const std::string& text) {
  PreTokenizer p(pre);
  EXPECT_TRUE(p.recognized()) << pre;
  Pieces out;
  for (Span s : p.split(text)) out.emplace_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

TEST(PreTokenizer, Gpt2KeepsOneSpaceWithTheNextWord) {
  EXPECT_EQ(split("gpt-2", "Hello world  foo"), (Pieces{"Hello", " world", " ", " foo"}));
  EXPECT_EQ(split("gpt-2", "I'm 42!"), (Pieces{"I", "'m", " 42", "!"}));
  EXPECT_EQ(split("mpt", "a \t\nb"), (Pieces{"a", " \t", "\n", "b"}));  // \s+(?!\S) leaves the last space
}

TEST(PreTokenizer, Llama3GroupsDigitsByThreeAndIgnoresContractionCase) {
  EXPECT_EQ(split("llama-bpe", "12345 abc"), (Pieces{"123", "45", " abc"}));
  EXPECT_EQ(split("llama-bpe", "I'M here"), (Pieces{"I", "'M", " here"}));
  EXPECT_EQ(split("llama3", "a\n\nb"), (Pieces{"a", "\n\n", "b"}));
  EXPECT_TRUE(PreTokenizer("llama-bpe").ignore_merges());
}

TEST(PreTokenizer, Qwen2SplitsEveryDigit) {
  EXPECT_EQ(split("qwen2", "x 2024"), (Pieces{"x", " ", "2", "0", "2", "4"}));
  EXPECT_FALSE(PreTokenizer("qwen2").ignore_merges());
}

TEST(PreTokenizer, StarcoderFamilySplitsDigitsFirst) {
  for (const char* name : {"starcoder", "refact", "command-r", "smollm"})
    EXPECT_EQ(split(name, "x=12 ab"), (Pieces{"x", "=", "1", "2", " ab"})) << name;
}

TEST(PreTokenizer, DeepseekCoderAndLlmSequences) {
  EXPECT_EQ(split("deepseek-coder", "ab 123"), (Pieces{"ab", " ", "1", "2", "3"}));
  EXPECT_EQ(split("deepseek-coder", "我想ab"), (Pieces{"我想", "ab"}));
  EXPECT_EQ(split("deepseek-llm", "3.14"), (Pieces{"3", ".", "14"}));
  EXPECT_EQ(split("deepseek-llm", "x\n"), (Pieces{"x", "\n"}));
  // The ASCII range :-~ of the third pattern holds the letters too, so it splits ASCII runs
  // out of the letter runs the second pattern made (as Hugging Face's Split sequence does).
  EXPECT_EQ(split("deepseek-llm", "F\u00fchrer  "), (Pieces{"F", "\u00fc", "hrer", "  "}));
}

TEST(PreTokenizer, FalconIsolatesPunctuationAndDigitTriples) {
  EXPECT_EQ(split("falcon", "a+b 1234"), (Pieces{"a", "+", "b", " ", "123", "4"}));
}

TEST(PreTokenizer, UnknownNameFallsBackToDefault) {
  PreTokenizer p("no-such-pre-tokenizer");
  EXPECT_FALSE(p.recognized());
  EXPECT_FALSE(p.split("some text").empty());
}

// Whatever the bytes, the pieces cover the text exactly, in order, with nothing empty.
TEST(PreTokenizer, PiecesCoverArbitraryBytes) {
  std::mt19937 rng(1234);
  const std::string alphabet[] = {"a",
                                  "Z",
                                  " ",
                                  "  ",
                                  "\n",
                                  "\t",
                                  "1",
                                  "'",
                                  "s",
                                  ".",
                                  "\xC3\xA9",
                                  "\xF0\x9F\xA6\x99",
                                  "\xE4\xB8\xAD",
                                  "\xFF",
                                  "\x80",
                                  "\xC3",
                                  "\xED\xA0\x80",
                                  "\0"};
  for (const auto& name : PreTokenizer::known_names()) {
    PreTokenizer p(name);
    for (int round = 0; round < 50; ++round) {
      std::string text;
      int n = static_cast<int>(rng() % 24);
      for (int i = 0; i < n; ++i) text += alphabet[rng() % std::size(alphabet)];
      size_t at = 0;
      for (Span s : p.split(text)) {
        ASSERT_EQ(s.begin, at) << name;
        ASSERT_LT(s.begin, s.end) << name;
        at = s.end;
      }
      ASSERT_EQ(at, text.size()) << name;
    }
  }
}

}  // namespace
}  // namespace clusterctl::tokenizer
