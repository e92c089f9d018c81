// The forward pass on real GGUF files: agreement with llama.cpp's greedy output on
// stories260K, batch = token-by-token, several sequences in one batch, F16 models, bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/unit/shared_data.h"
#include "worker/common/error.h"
#include "worker/model/engine.h"
#include "worker/tokenizer/tokenizer.h"

namespace clusterctl::model {
namespace {

using gguf::GgmlType;

std::unique_ptr<collectives::Communicator> local() { return collectives::make_local_communicator(); }

std::vector<float> row_copy(const LocalLogits& l, int64_t row) { return {l.row(row), l.row(row) + l.cols}; }

void expect_close(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / (1.0f + std::abs(b[i])));
  EXPECT_LT(worst, tol);
}

// Greedy continuation of `prompt_ids` for n tokens, one token per forward pass.
std::vector<int32_t> greedy(Engine& e, const std::vector<int32_t>& prompt_ids, int n) {
  std::vector<int32_t> out;
  LocalLogits l = e.prefill(prompt_ids, 0, 0);
  Batch b;
  int64_t pos = static_cast<int64_t>(prompt_ids.size());
  for (int i = 0; i < n; ++i) {
    int32_t tok = e.argmax(l, l.rows - 1);
    out.push_back(tok);
    b.clear();
    b.add(tok, static_cast<int32_t>(pos++), 0, true);
    l = e.forward(b);
  }
  return out;
}

TEST(ModelForward, Stories260KGreedyMatchesLlamaCpp) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  gguf::GgufFile f(path);
  auto comm = local();
  Engine e(f, *comm, {.threads = 1});
  auto tok = tokenizer::Tokenizer::from_gguf(f);
  auto prompt = tok->tokenize("Once upon a time", true, false);
  auto gen = greedy(e, prompt, 40);
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), gen.begin(), gen.end());
  const std::string text = tok->detokenize(all);
  // llama.cpp c392e509 greedy output for this prompt (../shared/models/SOURCE.md).
  const std::string expected =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
      "One day, she saw a big, red ball.";
  ASSERT_GE(text.size(), expected.size()) << text;
  EXPECT_EQ(text.substr(0, expected.size()), expected) << text;
}

// One batch of the whole prompt must give the logits of feeding it token by token.
// The batch takes the tiled matmul and a single token the matrix-vector path, so their sums
// differ in order (~1e-7); an F16 cache then rounds Q, K, V and the attention weights to
// 11-bit mantissas (2^-11 = 4.9e-4 relative), which can carry such a difference up to a few
// 1e-4 in the logits. A real batching bug (wrong position, mask or slot) gives errors of order 1.
void batch_equals_single(GgmlType kv_type) {
  const float tol = kv_type == GgmlType::F16 ? 1e-3f : 1e-4f;
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  gguf::GgufFile f(path);
  auto comm = local();
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 429, 322, 300, 440, 267, 299, 343, 268, 475};
  Engine batched(f, *comm, {.kv_type = kv_type, .threads = 1});
  Engine single(f, *comm, {.kv_type = kv_type, .threads = 1});
  Batch b;
  for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], static_cast<int32_t>(i), 0, true);
  LocalLogits all = batched.forward(b);
  ASSERT_EQ(all.rows, static_cast<int64_t>(prompt.size()));
  std::vector<std::vector<float>> batch_rows;
  for (int64_t i = 0; i < all.rows; ++i) batch_rows.push_back(row_copy(all, i));
  for (size_t i = 0; i < prompt.size(); ++i) {
    Batch one;
    one.add(prompt[i], static_cast<int32_t>(i), 0, true);
    LocalLogits l = single.forward(one);
    ASSERT_EQ(l.rows, 1);
    expect_close(batch_rows[i], row_copy(l, 0), tol);
  }
}

TEST(ModelForward, BatchEqualsTokenByTokenF16Cache) { batch_equals_single(GgmlType::F16); }
TEST(ModelForward, BatchEqualsTokenByTokenF32Cache) { batch_equals_single(GgmlType::F32); }

TEST(ModelForward, TwoSequencesInOneBatchEqualEachAlone) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  gguf::GgufFile f(path);
  auto comm = local();
  const std::vector<int32_t> a = {1, 403, 407, 261, 378, 429}, c = {1, 300, 440, 267};
  Engine alone(f, *comm, {.threads = 1});
  LocalLogits la = alone.prefill(a, 0, 0);
  auto last_a = row_copy(la, la.rows - 1);
  LocalLogits lc = alone.prefill(c, 0, 0);  // slot 0 reused from position 0
  auto last_c = row_copy(lc, lc.rows - 1);

  Engine both(f, *comm, {.n_slots = 2, .threads = 1});
  Batch b;  // interleaved: the batch mixes the sequences token by token
  for (size_t i = 0; i < std::max(a.size(), c.size()); ++i) {
    if (i < a.size()) b.add(a[i], static_cast<int32_t>(i), 0, i + 1 == a.size());
    if (i < c.size()) b.add(c[i], static_cast<int32_t>(i), 1, i + 1 == c.size());
  }
  LocalLogits l = both.forward(b);
  ASSERT_EQ(l.rows, 2);
  // c ends first (4 tokens) so its row comes first in batch order.
  expect_close(row_copy(l, 0), last_c, 1e-4f);
  expect_close(row_copy(l, 1), last_a, 1e-4f);
}

TEST(ModelForward, LlamaTinyRandomF16Runs) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/llama-2-tiny-random.gguf");
  gguf::GgufFile f(path);
  auto comm = local();
  Engine e(f, *comm, {.threads = 1});
  EXPECT_EQ(e.hparams().n_vocab, 32000u);
  auto gen = greedy(e, {1, 15043, 3186}, 8);
  ASSERT_EQ(gen.size(), 8u);
  for (int32_t t : gen) EXPECT_TRUE(t >= 0 && t < 32000);
  LocalLogits l = e.prefill({1, 15043}, 0, 0);
  for (int64_t i = 0; i < l.cols; ++i) ASSERT_TRUE(std::isfinite(l.row(0)[i]));
  // F16 weights against an F32 computation of the same file would differ only by rounding;
  // here we check the logits are not degenerate.
  float lo = l.row(0)[0], hi = lo;
  for (int64_t i = 0; i < l.cols; ++i) lo = std::min(lo, l.row(0)[i]), hi = std::max(hi, l.row(0)[i]);
  EXPECT_GT(hi - lo, 1e-6f);
}

TEST(ModelForward, PromptLongerThanContextIsRefused) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  gguf::GgufFile f(path);
  auto comm = local();
  Engine e(f, *comm, {.n_ctx = 8, .threads = 1});
  std::vector<int32_t> prompt(9, 300);
  try {
    e.prefill(prompt, 0, 0);
    FAIL() << "a 9-token prompt fit a context of 8";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("--ctx"), std::string::npos) << err.what();
  }
}

TEST(ModelForward, TokenOutsideVocabularyIsRefused) {
  CLUSTERCTL_REQUIRE_SHARED(path, "models/stories260K.gguf");
  gguf::GgufFile f(path);
  auto comm = local();
  Engine e(f, *comm, {.threads = 1});
  Batch b;
  b.add(512, 0, 0, true);
  EXPECT_THROW(e.forward(b), Error);
}

}  // namespace
}  // namespace clusterctl::model
