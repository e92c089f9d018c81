// Hugging Face model names (controller/hub/model_ref.h) and the choice of a model's files in a
// repo's listing (controller/hub/repo_files.h), on listings shaped as the hub's.
#include <gtest/gtest.h>

#include "controller/hub/model_ref.h"
#include "controller/hub/repo_files.h"
#include "worker/common/error.h"

using namespace clusterctl;
using namespace clusterctl::hub;

TEST(ModelRef, ParsesTheThreeForms) {
  auto a = parse_model_ref("unsloth/Qwen3-8B-GGUF");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->repo, "unsloth/Qwen3-8B-GGUF");
  EXPECT_EQ(a->quant, "");
  auto b = parse_model_ref("unsloth/Qwen3-8B-GGUF:Q4_K_M");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->repo, "unsloth/Qwen3-8B-GGUF");
  EXPECT_EQ(b->quant, "Q4_K_M");
  EXPECT_EQ(b->str(), "unsloth/Qwen3-8B-GGUF:Q4_K_M");
  auto c = parse_model_ref("org/repo/sub/Model-Q8_0.gguf");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->repo, "org/repo");
  EXPECT_EQ(c->file, "sub/Model-Q8_0.gguf");
  auto d = parse_model_ref("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_0");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->repo, "bartowski/Llama-3.2-1B-Instruct-GGUF");
}

TEST(ModelRef, PathsAndBadNamesAreNotNames) {
  for (const char* s : {"model.gguf", "models/model.gguf", "./a/b", "/abs/a/b", "~/a/b", "../a/b", "a", "a/b:",
                        "a/b:Q4 K", "a/b/c.bin", "a--x/b", "a/b/../c.gguf", "-a/b", "a/.b", "a/b/c//d.gguf", ""})
    EXPECT_FALSE(parse_model_ref(s)) << s;
}

namespace {

std::vector<RepoFile> listing(std::initializer_list<const char*> paths) {
  std::vector<RepoFile> out;
  for (const char* p : paths) out.push_back({p, 100, std::string(64, 'a')});
  return out;
}

std::string error_of(const std::vector<RepoFile>& files, const char* name) {
  try {
    choose_model_files(files, *parse_model_ref(name));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(RepoFiles, QuantLabels) {
  EXPECT_EQ(quant_label("Qwen3-8B-Q4_K_M.gguf"), "Q4_K_M");
  EXPECT_EQ(quant_label("Qwen3-8B-UD-Q4_K_XL.gguf"), "UD-Q4_K_XL");
  EXPECT_EQ(quant_label("BF16/Qwen3-235B-BF16-00001-of-00010.gguf"), "BF16");
  EXPECT_EQ(quant_label("Llama-3.2-1B-Instruct-IQ2_XXS.gguf"), "IQ2_XXS");
  EXPECT_EQ(quant_label("model.gguf"), "model");
}

TEST(RepoFiles, ChoosesTheQuantInAnyCaseAndEveryPart) {
  const auto files = listing({"README.md", "M-Q4_K_M.gguf", "M-Q8_0.gguf", "mmproj-M-F16.gguf",
                              "Q2_K/M-Q2_K-00002-of-00002.gguf", "Q2_K/M-Q2_K-00001-of-00002.gguf", "M-IQ4_XS.gguf"});
  auto q8 = choose_model_files(files, *parse_model_ref("org/M-GGUF:q8_0"));
  ASSERT_EQ(q8.files.size(), 1u);
  EXPECT_EQ(q8.files[0].path, "M-Q8_0.gguf");
  auto q2 = choose_model_files(files, *parse_model_ref("org/M-GGUF:Q2_K"));
  ASSERT_EQ(q2.files.size(), 2u);
  EXPECT_EQ(q2.files[0].path, "Q2_K/M-Q2_K-00001-of-00002.gguf");
  EXPECT_EQ(q2.files[1].path, "Q2_K/M-Q2_K-00002-of-00002.gguf");
  // No quant: Q4_K_M, as llama-server -hf.
  EXPECT_EQ(choose_model_files(files, *parse_model_ref("org/M-GGUF")).files[0].path, "M-Q4_K_M.gguf");
  // A file by name; a part names the whole split model.
  EXPECT_EQ(choose_model_files(files, *parse_model_ref("org/M-GGUF/Q2_K/M-Q2_K-00002-of-00002.gguf")).files.size(), 2u);
  // IQ4_XS is not Q4_XS (the boundary is '-' or '.', not a letter).
  EXPECT_NE(error_of(files, "org/M-GGUF:Q4_XS"), "");
}

TEST(RepoFiles, ErrorsNameTheCauseAndTheFix) {
  const auto files = listing({"M-Q4_0.gguf", "M-Q8_0.gguf", "mmproj-M-F16.gguf", "F16/M-F16-00001-of-00003.gguf",
                              "F16/M-F16-00003-of-00003.gguf"});
  const std::string missing = error_of(files, "org/M-GGUF:Q5_K_S");
  EXPECT_NE(missing.find("has no quant 'Q5_K_S': it has F16 (3 parts), Q4_0, Q8_0"), std::string::npos) << missing;
  EXPECT_EQ(missing.find("mmproj"), std::string::npos) << missing;
  const std::string split = error_of(files, "org/M-GGUF:F16");
  EXPECT_NE(split.find("F16/M-F16-00002-of-00003.gguf (part 2 of 3) is not in the repo"), std::string::npos) << split;
  EXPECT_NE(error_of(files, "org/M-GGUF").find("name one as org/M-GGUF:QUANT"), std::string::npos);
  EXPECT_NE(error_of(files, "org/M-GGUF/M-Q2_K.gguf").find("has no file M-Q2_K.gguf"), std::string::npos);
  EXPECT_NE(error_of(listing({"README.md"}), "org/M").find("has no GGUF model files"), std::string::npos);
}

TEST(RepoFiles, ParsesTheHubsTreeListing) {
  const auto files = parse_tree_page(R"([
    {"type":"directory","oid":"1a","size":0,"path":"F16"},
    {"type":"file","oid":"2b","size":1519,"path":".gitattributes"},
    {"type":"file","oid":"3c","size":5027783488,"path":"Qwen3-8B-Q4_K_M.gguf",
     "lfs":{"oid":"d98cdcbd03e17ce47681435b5150e34c1417f50b5c0019dd560e4882c5745785","size":5027783488,"pointerSize":135},
     "xetHash":"ff"}])");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[1].path, "Qwen3-8B-Q4_K_M.gguf");
  EXPECT_EQ(files[1].size, 5027783488u);
  EXPECT_EQ(files[1].sha256, "d98cdcbd03e17ce47681435b5150e34c1417f50b5c0019dd560e4882c5745785");
  EXPECT_EQ(files[0].sha256, "");
  EXPECT_THROW(parse_tree_page("{}"), Error);
  EXPECT_THROW(parse_tree_page(R"([{"type":"file","path":"x"}])"), Error);
}
