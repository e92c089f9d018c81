// DeepSeek-V3's (`deepseek-v3`) and Kimi-K2's (`kimi-k2`) pre-tokenizers, held to llama.cpp
// 3f545bec's token ids. No vocabulary of these models is at hand, so the test relabels the BPE
// vocabularies of ../shared/testdata/tokenizer with these pre-tokenizer names (and, for Kimi-K2,
// also drops the merges, which llama.cpp accepts for it): the split decides which merges can
// apply, so the ids differ from each vocabulary's own pre-tokenizer's where the splits differ.
// Inputs: the deepseek-llm vectors' strings and tests/data/reference/tokenizer/extra.inp (CJK,
// kana, Hangul, digits, code, emoji, marks, whitespace, contractions); expected ids: the .out
// files beside it, one line per string (see tests/data/reference/README.md).
#include <gtest/gtest.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>

#include "tests/unit/shared_data.h"
#include "worker/gguf/gguf_file.h"
#include "worker/gguf/gguf_writer.h"
#include "worker/tokenizer/tokenizer.h"
#include "worker/tools/tokenizer_vectors.h"

namespace clusterctl::tokenizer {
namespace {

namespace fs = std::filesystem;

const fs::path kReference = fs::path(CLUSTERCTL_SOURCE_DIR) / "tests/data/reference/tokenizer";

struct Case {
  const char* vocab;  // ggml-vocab-NAME.gguf in ../shared/testdata/tokenizer
  const char* pre;
  bool drop_merges;
  const char* expected;  // in kReference
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.expected; }

std::vector<std::vector<TokenId>> read_ids(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::vector<TokenId>> all;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<TokenId> ids;
    for (const char *p = line.data(), *end = p + line.size(); p < end;) {
      if (*p == ' ') {
        ++p;
        continue;
      }
      TokenId id = 0;
      auto r = std::from_chars(p, end, id);
      if (r.ec != std::errc()) throw std::runtime_error(path.string() + ": not a list of ids: " + line);
      ids.push_back(id);
      p = r.ptr;
    }
    all.push_back(std::move(ids));
  }
  return all;
}

class DeepseekKimiTokenizer : public ::testing::TestWithParam<Case> {};

TEST_P(DeepseekKimiTokenizer, EqualsLlamaCppIds) {
  const Case& c = GetParam();
  CLUSTERCTL_REQUIRE_SHARED(base, std::string("testdata/tokenizer/ggml-vocab-") + c.vocab + ".gguf");
  CLUSTERCTL_REQUIRE_SHARED(vectors, "testdata/tokenizer/ggml-vocab-deepseek-llm.gguf.inp");
  const fs::path dir = fs::path(::testing::TempDir()) / ("dskimi-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / (std::string(c.expected) + ".gguf")).string();
  {
    gguf::GgufFile from(base);
    gguf::GgufWriter w;
    w.copy_kv(from, [&](std::string_view key) { return !(c.drop_merges && key == "tokenizer.ggml.merges"); });
    w.set_kv("tokenizer.ggml.pre", gguf::value_string(c.pre));
    w.write(path);
  }
  gguf::GgufFile file(path);
  auto tok = Tokenizer::from_gguf(file);
  EXPECT_TRUE(tok->warning().empty()) << tok->warning();

  auto inputs = read_vector_inputs(vectors);
  const auto extra = read_vector_inputs((kReference / "extra.inp").string());
  inputs.insert(inputs.end(), extra.begin(), extra.end());
  const auto expected = read_ids(kReference / c.expected);
  ASSERT_EQ(inputs.size(), expected.size()) << "strings and lines of ids disagree: " << c.expected;
  size_t equal = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto ids = tok->tokenize(inputs[i], false, false);  // as llama_tokenize(.., false, false)
    EXPECT_EQ(ids, expected[i]) << c.expected << " string " << i << ": '" << inputs[i] << "'";
    equal += ids == expected[i];
  }
  std::cout << "[ ids      ] " << c.vocab << " as " << c.pre << (c.drop_merges ? " without merges" : "") << ": "
            << equal << "/" << inputs.size() << " strings equal llama.cpp's\n";
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Vocabularies, DeepseekKimiTokenizer,
    ::testing::Values(Case{"deepseek-llm", "deepseek-v3", false, "deepseek-llm-as-deepseek-v3.out"},
                      Case{"deepseek-llm", "kimi-k2", false, "deepseek-llm-as-kimi-k2.out"},
                      Case{"deepseek-llm", "kimi-k2", true, "deepseek-llm-as-kimi-k2-no-merges.out"},
                      Case{"llama-bpe", "deepseek-v3", false, "llama-bpe-as-deepseek-v3.out"},
                      Case{"llama-bpe", "kimi-k2", false, "llama-bpe-as-kimi-k2.out"},
                      Case{"gpt-2", "deepseek-v3", false, "gpt-2-as-deepseek-v3.out"},
                      Case{"gpt-2", "kimi-k2", false, "gpt-2-as-kimi-k2.out"}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string name = info.param.expected;
      name = name.substr(0, name.size() - 4);
      for (char& ch : name)
        if (ch == '-') ch = '_';
      return name;
    });

}  // namespace
}  // namespace clusterctl::tokenizer
