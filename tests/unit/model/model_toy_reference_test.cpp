// Toy models that `clusterctl model synth` writes here from the shared Llama SentencePiece
// vocabulary, against llama.cpp c392e509 on the same files (tests/data/reference/synth-tiny-*.json):
//  - `tiny-moe`, a Mixtral-style mixture of experts (llama architecture, 8 experts, 2 per token):
//    the F32 file's greedy tokens equal llama.cpp's, and the Q8_0 and Q4_K_M files' logits of a
//    64-token sequence agree with llama.cpp's (mean KL < 1e-3, same top-1 at >= 98 % of
//    positions), in one batch and one token per pass;
//  - `tiny-yarn`, the llama toy with YaRN RoPE scaling: the F32 file's greedy tokens;
//  - `tiny-qwen3`, `tiny-qwen3moe` and `tiny-ernie4_5` (F32) against a llama.cpp of Aug 2026,
//    which has those architectures: logits of the 64-token sequence;
//  - the deepseek2 toys `tiny-deepseek3` (V3-style) and `tiny-deepseek2-lite` (V2-Lite-style)
//    against the same llama.cpp: the F32 files' greedy tokens, the Q8_0 and Q4_K_M files' logits;
//  - `tiny-wide` in the five 1-3-bit IQ mixes against the same llama.cpp: mean KL within llama.cpp's
//    own one-token-vs-batch KL + 2e-4, top-1 at >= 58 of 64 (llama.cpp's own: 59 to 62); and in the
//    Q2_K, Q3_K_M, IQ4_XS and IQ4_NL mixes, whose matrices (rows a multiple of 8) all take the packed
//    8-row kernels: the same KL bound, top-1 at >= 55 of 64 (llama.cpp's own: 55 to 64).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "controller/ssh/sha256.h"
#include "tests/unit/model/logit_compare.h"
#include "tests/unit/model/synth_toy.h"
#include "tests/unit/shared_data.h"
#include "worker/model/engine.h"

namespace clusterctl::model {
namespace {

const std::string kRefDir = std::string(CLUSTERCTL_SOURCE_DIR) + "/tests/data/reference/";

nlohmann::json reference(const std::string& shape) {
  std::ifstream in(kRefDir + "synth-" + shape + ".json");
  EXPECT_TRUE(in.good()) << "missing reference synth-" << shape << ".json";
  return nlohmann::json::parse(in);
}

using test::kl_divergence;

int64_t argmax(const float* row, int64_t n) { return std::max_element(row, row + n) - row; }

// The reference's model of `type`, made here by the synth command it names; a different file
// (another synth stream or quantiser) would make the comparison meaningless, so the digest must match.
class ToyFile {
 public:
  ToyFile(const nlohmann::json& models, const std::string& shape, const std::string& type, const std::string& vocab)
      : toy_(shape, type, vocab, 0) {
    const auto& m = models[type];
    EXPECT_EQ(ssh::sha256_file(toy_.path), m["file_sha256"].get<std::string>())
        << toy_.path << " is not the file the reference was made from (made by: " << m["synth_command"] << ")";
  }
  const std::string& path() const { return toy_.path; }

 private:
  SynthToy toy_;
};

// The reference's greedy generations of its F32 file: prompt as one batch, then one token per pass.
void expect_greedy_tokens_equal(const std::string& shape, const std::string& vocab) {
  const auto ref = reference(shape);
  ToyFile file(ref["models"], shape, "F32", vocab);
  gguf::GgufFile f(file.path());
  auto comm = collectives::make_local_communicator();
  for (const auto& p : ref["greedy"]["prompts"]) {
    const auto prompt = p["prompt_ids"].get<std::vector<int32_t>>();
    const auto expected = p["generated_ids"].get<std::vector<int32_t>>();
    Engine e(f, *comm, {.n_ctx = 512, .threads = 2});
    LocalLogits l = e.prefill(prompt, 0, 0);
    std::vector<int32_t> got;
    Batch b;
    int32_t pos = static_cast<int32_t>(prompt.size());
    while (got.size() < expected.size()) {
      const int32_t t = e.argmax(l, l.rows - 1);
      got.push_back(t);
      b.clear();
      b.add(t, pos++, 0, true);
      l = e.forward(b);
    }
    // Where llama.cpp's two best logits lie within 1e-3 of each other, two correct engines may
    // pick either (summation order decides), and what follows is another continuation: the
    // comparison ends there.
    const auto margin = p["top1_top2_logit_margin"].get<std::vector<double>>();
    size_t same = 0;
    while (same < expected.size() && got[same] == expected[same]) ++same;
    if (same < expected.size() && margin[same] < 1e-3) {
      std::printf("%s, prompt %s: %zu of %zu tokens equal, then a near tie (llama.cpp's margin %.2g)\n", shape.c_str(),
                  p["prompt"].dump().c_str(), same, expected.size(), margin[same]);
      continue;
    }
    EXPECT_EQ(got, expected) << shape << ", prompt: " << p["prompt"];
  }
}

TEST(ToyReference, MixtureOfExpertsF32GreedyTokensEqualLlamaCpp) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "testdata/tokenizer/ggml-vocab-llama-spm.gguf");
  expect_greedy_tokens_equal("tiny-moe", vocab);
}

TEST(ToyReference, YarnRopeF32GreedyTokensEqualLlamaCpp) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "testdata/tokenizer/ggml-vocab-llama-spm.gguf");
  expect_greedy_tokens_equal("tiny-yarn", vocab);
}

TEST(ToyReference, DeepSeek3F32GreedyTokensEqualLlamaCpp) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "testdata/tokenizer/ggml-vocab-llama-spm.gguf");
  expect_greedy_tokens_equal("tiny-deepseek3", vocab);
}

TEST(ToyReference, DeepSeek2LiteF32GreedyTokensEqualLlamaCpp) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "testdata/tokenizer/ggml-vocab-llama-spm.gguf");
  expect_greedy_tokens_equal("tiny-deepseek2-lite", vocab);
}

struct LogitCase {
  const char* shape;
  const char* type;
  double max_kl;  // quantised activations: acceptance 2's bar; float ones agree far closer
  // The deepseek2 toys route among experts on small differences, so their quantised top tokens
  // move more (llama.cpp's own two paths: mean KL 0.7e-3 to 1.6e-3, 51 to 61 of 64 top-1 equal):
  // one token per pass is held to its llama.cpp counterpart within this KL (0: max_kl), and
  // the top-1 agreement asked for is this many of 64 (0: 98 %).
  double max_kl_one_token = 0;
  int min_top1 = 0;
  // > 0: acceptance 2 of the low-bit types: the bound is llama.cpp's own one-token-vs-batch KL on
  // the same file and rows (stored in the reference) plus this, in both of our paths.
  double over_llama_cpp_own_kl = 0;
};

class ToyLogits : public ::testing::TestWithParam<LogitCase> {};

TEST_P(ToyLogits, AgreeWithLlamaCpp) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "testdata/tokenizer/ggml-vocab-llama-spm.gguf");
  const std::string shape = GetParam().shape, type = GetParam().type;
  const auto ref = reference(shape);
  const auto& tf = ref["teacher_forced"];
  const auto& want = tf["types"][type];
  // The deepseek2-lite toy's logits are of its attn_k_b/attn_v_b twin: with the fused attn_kv_b
  // llama.cpp expands every cached latent instead of absorbing the expansion, rounding otherwise.
  const std::string file_shape = want.value("shape", shape);
  ToyFile file(ref.contains("models_teacher_forced") ? ref["models_teacher_forced"] : ref["models"], file_shape, type,
               vocab);
  gguf::GgufFile f(file.path());
  const auto ids = tf["token_ids"].get<std::vector<int32_t>>();
  const auto positions = tf["positions"].get<std::vector<int64_t>>();
  const auto top1 = want["top1"].get<std::vector<int64_t>>();
  const int64_t T = static_cast<int64_t>(ids.size());

  auto comm = collectives::make_local_communicator();
  const int64_t V = Model::read_hparams(f).n_vocab;
  auto read_rows = [&](const std::string& name) {
    std::vector<float> rows(positions.size() * V);
    std::ifstream bin(kRefDir + name, std::ios::binary);
    bin.read(reinterpret_cast<char*>(rows.data()), static_cast<std::streamsize>(rows.size() * sizeof(float)));
    EXPECT_TRUE(bin.good()) << name;
    return rows;
  };
  const std::vector<float> batch_rows = read_rows(want["logit_rows_file"].get<std::string>());
  // Where llama.cpp's own one-token-per-decode rows are stored (its batch and decode paths round
  // differently), each of our paths is held to its counterpart.
  const bool own_decode_rows = want.contains("one_token_logit_rows_file");
  const std::vector<float> decode_rows =
      own_decode_rows ? read_rows(want["one_token_logit_rows_file"].get<std::string>()) : batch_rows;
  const auto decode_top1 = own_decode_rows ? want["top1_one_token_per_decode"].get<std::vector<int64_t>>() : top1;

  // In one batch, then one token per pass (the decode kernels).
  for (const bool one_by_one : {false, true}) {
    Engine e(f, *comm, {.n_ctx = T, .threads = 2});
    std::vector<float> logits(T * V);
    if (one_by_one) {
      for (int64_t i = 0; i < T; ++i) {
        Batch b;
        b.add(ids[i], static_cast<int32_t>(i), 0, true);
        LocalLogits l = e.forward(b);
        std::copy_n(l.row(0), V, &logits[i * V]);
      }
    } else {
      Batch b;
      for (int64_t i = 0; i < T; ++i) b.add(ids[i], static_cast<int32_t>(i), 0, true);
      LocalLogits l = e.forward(b);
      ASSERT_EQ(l.rows, T);
      std::copy_n(l.row(0), T * V, logits.begin());
    }
    const std::vector<float>& rows = one_by_one ? decode_rows : batch_rows;
    const std::vector<int64_t>& want_top1 = one_by_one ? decode_top1 : top1;
    int same = 0;
    for (int64_t i = 0; i < T; ++i) same += argmax(&logits[i * V], V) == want_top1[i];
    double kl = 0;
    for (size_t k = 0; k < positions.size(); ++k) kl += kl_divergence(&rows[k * V], &logits[positions[k] * V], V);
    kl /= static_cast<double>(positions.size());
    const char* how = one_by_one ? "one token per pass" : "one batch";
    std::printf(
        "%s %s, %s: mean KL %.3g, top-1 agreement %d/%lld (llama.cpp %s one token per decode vs its "
        "batch: %d/64)\n",
        file_shape.c_str(), type.c_str(), how, kl, same, static_cast<long long>(T),
        ref["llama_cpp_commit"].get<std::string>().substr(0, 8).c_str(),
        want["one_token_per_decode"]["top1_agreement_with_batch"].get<int>());
    const LogitCase& c = GetParam();
    const double own_kl = want["one_token_per_decode"].value("mean_kl_vs_batch_stored_rows", 0.0);
    const double bound = c.over_llama_cpp_own_kl > 0            ? own_kl + c.over_llama_cpp_own_kl
                         : one_by_one && c.max_kl_one_token > 0 ? c.max_kl_one_token
                                                                : c.max_kl;
    EXPECT_LT(kl, bound) << how << " (llama.cpp's own one token per decode vs its batch: KL " << own_kl << ")";
    EXPECT_GE(same, c.min_top1 > 0 ? c.min_top1 : std::ceil(0.98 * static_cast<double>(T))) << how;
  }
}

// Qwen3, Qwen3-MoE and ERNIE 4.5 against a llama.cpp of Aug 2026 (c392e509 predates them): F32, where the
// float sums of two correct engines agree to KL ~1e-7 (a bug in QK-norm, NeoX RoPE or the
// routing moves it past 1e-3).
INSTANTIATE_TEST_SUITE_P(
    Toys, ToyLogits,
    ::testing::Values(
        LogitCase{"tiny-moe", "Q8_0", 1e-3}, LogitCase{"tiny-moe", "Q4_K_M", 1e-3},
        LogitCase{"tiny-qwen3", "F32", 1e-5}, LogitCase{"tiny-qwen3moe", "F32", 1e-5},
        LogitCase{"tiny-ernie4_5", "F32", 1e-5}, LogitCase{"tiny-deepseek3", "F32", 1e-5},
        LogitCase{"tiny-deepseek2-lite", "F32", 1e-5}, LogitCase{"tiny-deepseek3", "Q8_0", 1e-3, 2e-3, 56},
        LogitCase{"tiny-deepseek3", "Q4_K_M", 1e-3, 2e-3, 56}, LogitCase{"tiny-deepseek2-lite", "Q8_0", 1e-3, 2e-3, 56},
        LogitCase{"tiny-deepseek2-lite", "Q4_K_M", 1e-3, 2e-3, 56},
        // The 1-3-bit IQ mixes (random valid blocks): together all seven IQ grid types.
        LogitCase{"tiny-wide", "IQ1_S", 0, 0, 58, 2e-4}, LogitCase{"tiny-wide", "IQ1_M", 0, 0, 58, 2e-4},
        LogitCase{"tiny-wide", "IQ2_XS", 0, 0, 58, 2e-4}, LogitCase{"tiny-wide", "IQ2_M", 0, 0, 58, 2e-4},
        LogitCase{"tiny-wide", "IQ3_XXS", 0, 0, 58, 2e-4},
        // The Q2_K, Q3_K_M, IQ4_XS and IQ4_NL mixes: every matrix in the packed 8-row kernels
        // (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS, IQ4_NL); top-1 at >= llama.cpp's own worst (55).
        LogitCase{"tiny-wide", "Q2_K", 0, 0, 55, 2e-4}, LogitCase{"tiny-wide", "Q3_K_M", 0, 0, 55, 2e-4},
        LogitCase{"tiny-wide", "IQ4_XS", 0, 0, 55, 2e-4}, LogitCase{"tiny-wide", "IQ4_NL", 0, 0, 55, 2e-4}),
    [](const auto& info) {
      std::string n = std::string(info.param.shape) + "_" + info.param.type;
      for (char& c : n)
        if (c == '-') c = '_';
      return n;
    });

}  // namespace
}  // namespace clusterctl::model
