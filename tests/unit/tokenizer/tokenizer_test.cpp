// Tokenizer behaviour beyond the reference vectors: special tokens, BOS/EOS, invalid UTF-8,
// streaming detokenization. Uses the real vocab files of ../shared/testdata/tokenizer.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "tests/unit/shared_data.h"
#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/tokenizer/stream_decoder.h"
#include "worker/tokenizer/tokenizer.h"
#include "worker/tokenizer/utf8.h"

namespace clusterctl::tokenizer {
namespace {

std::unique_ptr<Tokenizer> load(const std::string& path) {
  gguf::GgufFile f(path);
  return Tokenizer::from_gguf(f);
}

#define LOAD_VOCAB(var, name)                                                           \
  CLUSTERCTL_REQUIRE_SHARED(var##_path, "testdata/tokenizer/ggml-vocab-" name ".gguf"); \
  auto var = load(var##_path)

bool contains(const std::vector<TokenId>& ids, TokenId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// Streams `ids` one at a time; checks every chunk is whole UTF-8 and returns the chunks.
std::vector<std::string> stream(const Tokenizer& tok, const std::vector<TokenId>& ids) {
  StreamDecoder dec(tok);
  std::vector<std::string> chunks;
  for (TokenId id : ids) chunks.push_back(dec.push(id));
  chunks.push_back(dec.finish());
  for (const auto& c : chunks) EXPECT_EQ(utf8::sanitize(c), c) << "a chunk holds part of a UTF-8 character";
  return chunks;
}

std::string join(const std::vector<std::string>& chunks) {
  std::string s;
  for (const auto& c : chunks) s += c;
  return s;
}

TEST(TokenizerSpm, EmojiSplitAcrossByteTokensStreamsWhole) {
  LOAD_VOCAB(tok, "llama-spm");
  const std::string text = "llamas 🦙 and rockets 🚀!";
  auto ids = tok->tokenize(text, true, false);
  // The emoji are not in the Llama 2 vocab: each one is four <0xXX> byte tokens.
  TokenId f0 = tok->vocab().find("<0xF0>");
  ASSERT_NE(f0, kNoToken);
  ASSERT_TRUE(contains(ids, f0));
  auto chunks = stream(*tok, ids);
  EXPECT_EQ(join(chunks), text);
  // Bytes of an unfinished character were held back, not printed.
  EXPECT_TRUE(std::count(chunks.begin(), chunks.end(), std::string()) >= 3);
}

TEST(TokenizerBpe, EmojiSplitAcrossByteLevelTokensStreamsWhole) {
  LOAD_VOCAB(tok, "gpt-2");
  const std::string text = "weather: 😶‍🌫️ then ✅";
  auto ids = tok->tokenize(text, false, false);
  ASSERT_GT(ids.size(), 6u);
  std::vector<std::string> partial;
  for (TokenId id : ids)
    if (utf8::sanitize(tok->piece(id)) != tok->piece(id)) partial.push_back(tok->piece(id));
  EXPECT_FALSE(partial.empty()) << "expected some tokens holding part of a character";
  EXPECT_EQ(join(stream(*tok, ids)), text);
}

TEST(TokenizerStream, UnfinishedCharacterAtTheEndBecomesReplacement) {
  LOAD_VOCAB(tok, "llama-spm");
  StreamDecoder dec(*tok);
  EXPECT_EQ(dec.push(tok->vocab().find("<0xF0>")), "");
  EXPECT_EQ(dec.push(tok->vocab().find("<0x9F>")), "");
  EXPECT_EQ(dec.finish(), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TokenizerStream, StripsOnlyTheSpaceTheTokenizerAdded) {
  LOAD_VOCAB(tok, "llama-spm");
  auto ids = tok->tokenize("Hello world", true, false);
  ASSERT_EQ(ids.front(), tok->vocab().bos());
  EXPECT_EQ(join(stream(*tok, ids)), "Hello world");
  EXPECT_EQ(tok->detokenize(ids), "Hello world");
  auto spaced = tok->tokenize("  two spaces", false, false);
  EXPECT_EQ(tok->detokenize(spaced), "  two spaces");
}

const std::string kInvalidUtf8 =
    "ok \xFF\xFE lone continuation \x80, overlong \xC0\xAF, surrogate \xED\xA0\x80, cut \xE2\x82";

TEST(TokenizerSpm, InvalidUtf8BecomesByteTokensAndRoundTrips) {
  LOAD_VOCAB(tok, "llama-spm");
  auto ids = tok->tokenize(kInvalidUtf8, false, false);
  EXPECT_TRUE(contains(ids, tok->vocab().find("<0xFF>")));
  EXPECT_EQ(tok->detokenize(ids), kInvalidUtf8);
  for (TokenId id : ids) EXPECT_NE(id, tok->vocab().unk());
}

// Every byte has a plain byte-level token: invalid input survives byte for byte.
TEST(TokenizerBpe, InvalidUtf8IsByteEncodedAndRoundTrips) {
  for (const char* name : {"gpt-2", "llama-bpe"}) {
    CLUSTERCTL_REQUIRE_SHARED(path, std::string("testdata/tokenizer/ggml-vocab-") + name + ".gguf");
    auto tok = load(path);
    for (int b = 0; b < 256; ++b)
      ASSERT_EQ(tok->vocab().type(tok->vocab().byte_token(static_cast<uint8_t>(b))), TokenType::Normal) << name;
    auto ids = tok->tokenize(kInvalidUtf8, false, false);
    EXPECT_EQ(tok->detokenize(ids), kInvalidUtf8) << name;
    // The printable form replaces, never passes on, the bad bytes.
    std::string printed = join(stream(*tok, ids));
    EXPECT_EQ(utf8::sanitize(printed), printed) << name;
  }
}

// Vocabularies trained on valid text may lack tokens for bytes like 0xFF (Falcon) or hold
// them as added tokens (DeepSeek's "ÿ"): those bytes cannot come back, but nothing breaks
// and the valid text around them does.
TEST(TokenizerBpe, InvalidUtf8WithoutByteTokensKeepsTheValidText) {
  for (const char* name : {"falcon", "deepseek-llm"}) {
    CLUSTERCTL_REQUIRE_SHARED(path, std::string("testdata/tokenizer/ggml-vocab-") + name + ".gguf");
    auto tok = load(path);
    std::string back = tok->detokenize(tok->tokenize(kInvalidUtf8, false, false));
    for (const char* part : {"ok ", " lone continuation ", ", overlong ", ", surrogate ", ", cut "})
      EXPECT_NE(back.find(part), std::string::npos) << name << ": lost '" << part << "'";
  }
}

// Random bytes, valid UTF-8 or not: never a crash, and the vocabs with byte tokens for all
// 256 bytes give the bytes back exactly.
TEST(TokenizerRobustness, RandomBytesRoundTrip) {
  std::mt19937 rng(42);
  for (const char* name : {"llama-spm", "gpt-2", "llama-bpe", "bert-bge"}) {
    CLUSTERCTL_REQUIRE_SHARED(path, std::string("testdata/tokenizer/ggml-vocab-") + name + ".gguf");
    auto tok = load(path);
    bool exact = tok->vocab().kind() != VocabKind::WordPiece;
    for (int round = 0; round < 200; ++round) {
      std::string text(rng() % 40, '\0');
      for (char& c : text) c = static_cast<char>(rng() % 4 ? rng() % 128 : rng() % 256);
      auto ids = tok->tokenize(text, true, false);
      for (TokenId id : ids) ASSERT_TRUE(tok->vocab().valid(id)) << name;
      std::string back = tok->detokenize(ids);
      if (exact) {
        ASSERT_EQ(back, text) << name;
      }
    }
  }
}

TEST(TokenizerBpe, ParseSpecialTurnsControlTextIntoTheToken) {
  LOAD_VOCAB(tok, "llama-bpe");
  TokenId eot = tok->vocab().find("<|eot_id|>");
  ASSERT_NE(eot, kNoToken);
  const std::string text = "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>";
  auto with = tok->tokenize(text, false, true);
  EXPECT_EQ(with.back(), eot);
  EXPECT_EQ(with.front(), tok->vocab().find("<|start_header_id|>"));
  auto without = tok->tokenize(text, false, false);
  EXPECT_FALSE(contains(without, eot));
  EXPECT_GT(without.size(), with.size());
  EXPECT_EQ(tok->detokenize(without), text);
  // Control tokens print nothing unless asked to.
  EXPECT_EQ(tok->detokenize(with), "user\n\nhi");
  EXPECT_EQ(tok->detokenize(with, true), text);
}

TEST(TokenizerSpm, ParseSpecialAndAddSpecial) {
  LOAD_VOCAB(tok, "llama-spm");
  const TokenId bos = tok->vocab().bos(), eos = tok->vocab().eos();
  EXPECT_EQ(tok->tokenize("<s>", false, true), std::vector<TokenId>{bos});
  EXPECT_FALSE(contains(tok->tokenize("<s>hi</s>", false, false), bos));
  auto parsed = tok->tokenize("<s>hi</s>", false, true);
  EXPECT_EQ(parsed.front(), bos);
  EXPECT_EQ(parsed.back(), eos);
  // The model's flags: add_bos_token = true, add_eos_token = false.
  auto with_bos = tok->tokenize("hi", true, false);
  EXPECT_EQ(with_bos.front(), bos);
  EXPECT_NE(with_bos.back(), eos);
  EXPECT_TRUE(tok->tokenize("", false, false).empty());
  EXPECT_EQ(tok->tokenize("", true, false), std::vector<TokenId>{bos});
}

TEST(TokenizerBpe, EndOfGenerationTokens) {
  LOAD_VOCAB(tok, "llama-bpe");
  const Vocab& v = tok->vocab();
  EXPECT_EQ(v.eot(), v.find("<|eot_id|>"));  // not in the metadata: found by its text
  for (const char* text : {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"})
    EXPECT_TRUE(v.is_end_of_generation(v.find(text))) << text;
  EXPECT_TRUE(v.is_end_of_generation(v.eos()));
  EXPECT_FALSE(v.is_end_of_generation(v.find("<|begin_of_text|>")));
  EXPECT_FALSE(v.is_end_of_generation(v.find("Hello")));
}

TEST(TokenizerBpe, ModelsWithoutBosFlagGetNone) {
  LOAD_VOCAB(tok, "gpt-2");
  EXPECT_FALSE(tok->vocab().add_bos());
  EXPECT_EQ(tok->tokenize("Hello", true, false), tok->tokenize("Hello", false, false));
}

// A minimal GGUF v3 image holding only string metadata (no tensors).
std::vector<uint8_t> gguf_with_strings(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::vector<uint8_t> b;
  auto put = [&](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  auto put_string = [&](const std::string& s) {
    put(s.size(), 8);
    b.insert(b.end(), s.begin(), s.end());
  };
  b.insert(b.end(), {'G', 'G', 'U', 'F'});
  put(3, 4);          // version
  put(0, 8);          // tensors
  put(kv.size(), 8);  // metadata entries
  for (const auto& [key, value] : kv) {
    put_string(key);
    put(8, 4);  // STRING
    put_string(value);
  }
  return b;
}

std::string load_error(const std::vector<std::pair<std::string, std::string>>& kv) {
  auto image = gguf_with_strings(kv);
  auto f = gguf::GgufFile::from_memory(image, "test.gguf");
  try {
    Tokenizer::from_gguf(*f);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TokenizerLoad, MissingOrUnsupportedTokenizerNamesTheCause) {
  std::string none = load_error({{"general.architecture", "llama"}});
  EXPECT_NE(none.find("tokenizer.ggml.model"), std::string::npos) << none;
  EXPECT_NE(none.find("test.gguf"), std::string::npos) << none;
  std::string t5 = load_error({{"tokenizer.ggml.model", "t5"}});
  EXPECT_NE(t5.find("'t5 (Unigram)' is not supported"), std::string::npos) << t5;
  std::string no_tokens = load_error({{"tokenizer.ggml.model", "gpt2"}});
  EXPECT_NE(no_tokens.find("tokenizer.ggml.tokens"), std::string::npos) << no_tokens;
}

TEST(TokenizerWordPiece, ClsTextSep) {
  LOAD_VOCAB(tok, "bert-bge");
  auto ids = tok->tokenize("Hello, World!", true, false);
  // [CLS] hello , world ! [SEP]
  EXPECT_EQ(ids, (std::vector<TokenId>{101, 7592, 1010, 2088, 999, 102}));
  EXPECT_EQ(tok->detokenize(ids), "hello , world !");
  // Unknown words become [UNK] as a whole.
  EXPECT_EQ(tok->tokenize("ខ្មែរ", false, false), std::vector<TokenId>{tok->vocab().unk()});
}

TEST(TokenizerLoad, IdOutsideTheVocabularyIsAnError) {
  LOAD_VOCAB(tok, "gpt-2");
  EXPECT_THROW(tok->piece(static_cast<TokenId>(tok->vocab().size())), Error);
  EXPECT_THROW(tok->piece(-1), Error);
}

}  // namespace
}  // namespace clusterctl::tokenizer
