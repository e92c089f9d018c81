// llama.cpp's tokenizer test vectors: every vocab in ../shared/testdata/tokenizer with a .gguf
// and .inp/.out files must reproduce the reference ids exactly (the ids Hugging Face's own
// tokenizers produced). The folder is listed at test discovery, so a vocab dropped in is tested.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "tests/unit/shared_data.h"
#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/tokenizer/tokenizer.h"
#include "worker/tools/tokenizer_vectors.h"

namespace clusterctl::tokenizer {
namespace {

namespace fs = std::filesystem;

const char* kVectorDir = "testdata/tokenizer";

// The expected ids of an .out file, one list per line (only this test reads them).
std::vector<std::vector<TokenId>> read_vector_outputs(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the test-vector file");
  std::vector<std::vector<TokenId>> outputs;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::vector<TokenId> ids;
    const char* p = line.data();
    const char* end = p + line.size();
    while (p < end) {
      if (*p == ' ' || *p == '\r' || *p == '\t') {
        ++p;
        continue;
      }
      TokenId id = 0;
      auto [next, ec] = std::from_chars(p, end, id);
      if (ec != std::errc() || id < 0)
        throw Error(path + ":" + std::to_string(line_no) + ": expected token ids separated by spaces, found '" + line +
                    "'");
      ids.push_back(id);
      p = next;
    }
    outputs.push_back(std::move(ids));
  }
  return outputs;
}

struct VocabVectors {
  std::string name;  // "llama-spm" for ggml-vocab-llama-spm.gguf.inp
  fs::path inp;
  fs::path out;
  fs::path gguf;
};

// How GoogleTest names a parameter in its output.
void PrintTo(const VocabVectors& v, std::ostream* os) { *os << v.name; }

std::vector<VocabVectors> vocab_vectors() {
  std::vector<VocabVectors> all;
  fs::path dir = test::shared_path(kVectorDir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return all;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string file = entry.path().filename().string();
    const std::string suffix = ".gguf.inp";
    if (file.size() <= suffix.size() || file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    std::string stem = file.substr(0, file.size() - 4);  // X.gguf
    std::string name = stem.substr(0, stem.size() - 5);
    if (name.rfind("ggml-vocab-", 0) == 0) name = name.substr(11);
    all.push_back({name, entry.path(), dir / (stem + ".out"), dir / stem});
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return all;
}

// Why a vocab is not checked, or "" when it must pass.
std::string skip_reason(const VocabVectors& v, std::string& model) {
  if (!fs::exists(v.gguf)) return "no " + v.gguf.filename().string() + " in the folder (only the vectors)";
  if (!fs::exists(v.out)) return "no " + v.out.filename().string() + " (expected ids) in the folder";
  model = gguf::GgufFile(v.gguf.string()).get_string("tokenizer.ggml.model", "");
  if (model == "llama" || model == "gpt2" || model == "bert") return "";
  return "tokenizer.ggml.model '" + model + "' not supported";
}

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else
      out += static_cast<char>(c);
  }
  return "\"" + out + "\"";
}

class TokenizerVectors : public ::testing::TestWithParam<VocabVectors> {};

TEST_P(TokenizerVectors, ReproducesReferenceIds) {
  const VocabVectors& v = GetParam();
  std::string model;
  std::string reason = skip_reason(v, model);
  if (!reason.empty()) GTEST_SKIP() << v.name << ": " << reason;

  gguf::GgufFile file(v.gguf.string());
  auto tok = Tokenizer::from_gguf(file);
  EXPECT_TRUE(tok->warning().empty()) << tok->warning();
  auto inputs = read_vector_inputs(v.inp.string());
  auto expected = read_vector_outputs(v.out.string());
  ASSERT_EQ(inputs.size(), expected.size()) << v.inp << " and " << v.out << " disagree on the number of strings";
  ASSERT_FALSE(inputs.empty());

  size_t passed = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    // As the vectors were made: no BOS/EOS, special-token text is plain text.
    auto ids = tok->tokenize(inputs[i], false, false);
    EXPECT_EQ(ids, expected[i]) << v.name << " string " << i << ": " << printable(inputs[i]);
    if (ids == expected[i]) ++passed;
  }
  std::cout << "[ vectors  ] " << v.name << " (" << model << "): " << passed << "/" << inputs.size()
            << " strings exact\n";
}

// Text -> ids -> text gives the text back, byte for byte.
TEST_P(TokenizerVectors, RoundTripsToTheSameText) {
  const VocabVectors& v = GetParam();
  std::string model;
  std::string reason = skip_reason(v, model);
  if (!reason.empty()) GTEST_SKIP() << v.name << ": " << reason;

  if (model == "bert")
    GTEST_SKIP() << v.name << ": WordPiece lower-cases and drops accents, so text does not come back";
  gguf::GgufFile file(v.gguf.string());
  auto tok = Tokenizer::from_gguf(file);
  for (const auto& text : read_vector_inputs(v.inp.string())) {
    auto ids = tok->tokenize(text, true, false);  // with BOS where the model wants one
    EXPECT_EQ(tok->detokenize(ids), text) << v.name << ": " << printable(text);
  }
}

std::string test_name(const ::testing::TestParamInfo<VocabVectors>& info) {
  std::string n;
  for (char c : info.param.name) n += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(SharedFolder, TokenizerVectors, ::testing::ValuesIn(vocab_vectors()), test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(TokenizerVectors);

// The folder itself: present (required under CI), and the list of what is checked or skipped.
TEST(TokenizerVectorFolder, ListsEveryVocab) {
  CLUSTERCTL_REQUIRE_SHARED(dir, kVectorDir);
  auto all = vocab_vectors();
  ASSERT_FALSE(all.empty()) << "no *.gguf.inp files in " << dir;
  size_t checked = 0;
  for (const auto& v : all) {
    std::string model;
    std::string reason = skip_reason(v, model);
    std::cout << "[ vocab    ] " << v.name << ": "
              << (reason.empty() ? "checked (" + model + ")" : "skipped: " + reason) << "\n";
    if (reason.empty()) ++checked;
  }
  EXPECT_GT(checked, 0u) << "no SentencePiece, BPE or WordPiece vocab with .gguf and .inp/.out in " << dir;
}

}  // namespace
}  // namespace clusterctl::tokenizer
