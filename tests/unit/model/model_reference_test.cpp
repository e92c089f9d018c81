// Agreement with llama.cpp on the same file (reference data in tests/data/reference, produced
// by llama.cpp c392e509): greedy tokens of stories260K for five prompts, and perplexity.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/unit/shared_data.h"
#include "worker/model/engine.h"
#include "worker/model/perplexity.h"
#include "worker/tokenizer/tokenizer.h"

namespace clusterctl::model {
namespace {

nlohmann::json load_reference(const std::string& name) {
  std::ifstream in(std::string(CLUSTERCTL_SOURCE_DIR) + "/tests/data/reference/" + name);
  EXPECT_TRUE(in.good()) << "missing reference " << name;
  return nlohmann::json::parse(in);
}

class Stories260KReference : public ::testing::TestWithParam<int> {};

TEST_P(Stories260KReference, GreedyTokensEqualLlamaCpp) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  const auto ref = load_reference("stories260K-greedy.json");
  const auto& p = ref["prompts"].at(GetParam());
  const auto prompt_ids = p["prompt_ids"].get<std::vector<int32_t>>();
  const auto expected = p["generated_ids"].get<std::vector<int32_t>>();

  gguf::GgufFile f(path);
  auto tok = tokenizer::Tokenizer::from_gguf(f);
  EXPECT_EQ(tok->tokenize(p["prompt"].get<std::string>(), true, true), prompt_ids);

  auto comm = collectives::make_local_communicator();
  // As the reference: F16 KV cache, prompt as one batch, then one token per forward pass.
  Engine e(f, *comm, {.threads = 1});
  LocalLogits l = e.prefill(prompt_ids, 0, 0);
  std::vector<int32_t> got;
  Batch b;
  int32_t pos = static_cast<int32_t>(prompt_ids.size());
  while (got.size() < expected.size()) {
    int32_t t = e.argmax(l, l.rows - 1);
    got.push_back(t);
    b.clear();
    b.add(t, pos++, 0, true);
    l = e.forward(b);
  }
  EXPECT_EQ(got, expected) << "prompt: " << p["prompt"];
}

INSTANTIATE_TEST_SUITE_P(FivePrompts, Stories260KReference, ::testing::Range(0, 5));

TEST(Stories260KReferencePerplexity, EqualsLlamaPerplexity) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  const auto ref = load_reference("stories260K-perplexity.json");
  std::ifstream in(std::string(CLUSTERCTL_SOURCE_DIR) + "/tests/data/reference/ppl_text.txt", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();

  gguf::GgufFile f(path);
  auto tok = tokenizer::Tokenizer::from_gguf(f);
  auto comm = collectives::make_local_communicator();
  Engine e(f, *comm, {.n_ctx = ref["n_ctx"].get<int64_t>(), .threads = 1});
  auto tokens = tok->tokenize(ss.str(), true, false);
  auto res = perplexity(e, tokens, tok->vocab().bos(), -1);
  EXPECT_EQ(res.chunks, ref["chunks"].get<int64_t>());
  const double expected = ref["ppl"].get<double>();
  EXPECT_NEAR(res.ppl, expected, expected * 0.005);  // acceptance: within 0.5 %
  const auto running = ref["running_ppl_after_chunk"].get<std::vector<double>>();
  ASSERT_EQ(res.running_ppl.size(), running.size());
  for (size_t i = 0; i < running.size(); ++i) EXPECT_NEAR(res.running_ppl[i], running[i], running[i] * 0.005) << i;
}

}  // namespace
}  // namespace clusterctl::model
