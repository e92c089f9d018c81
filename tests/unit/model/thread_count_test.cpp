// A pool of any size gives one thread's logits, bit for bit: every piece a pass shares among
// threads (matmul rows, attention's (token, head) items, SwiGLU's silu(gate) * up elements, each
// token's norms, RoPE and KV stores, the router's tokens) is computed whole by whichever thread
// takes it. A prompt of 24 tokens puts 24 x 512 = 12288 of the tiny toy's gate elements and
// 24 x 256 of its norms' on the pool, and about 6 tokens on each of the MoE toy's experts
// (6 x 512 = 3072 elements alone, 4096 and more where more are routed).
#include <gtest/gtest.h>

#include <cstring>

#include "tests/unit/model/synth_toy.h"
#include "tests/unit/shared_data.h"
#include "worker/model/engine.h"

namespace clusterctl::model {
namespace {

void expect_three_threads_equal_one(const std::string& shape, const std::string& type) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "testdata/tokenizer/ggml-vocab-llama-spm.gguf");
  SynthToy toy(shape, type, vocab);
  gguf::GgufFile f(toy.path);
  auto comm = collectives::make_local_communicator();
  Engine one(f, *comm, {.n_ctx = 64, .threads = 1}), three(f, *comm, {.n_ctx = 64, .threads = 3});
  Batch prompt;
  for (int32_t i = 0; i < 24; ++i) prompt.add(1 + (i * 7919) % 31999, i, 0, true);
  // The prompt in one batch (the tiles), then two decode tokens (the matrix-vector kernels).
  for (int step = 0; step < 3; ++step) {
    Batch decode;
    decode.add(1 + (step * 104729) % 31999, 23 + step, 0, true);
    const Batch& b = step == 0 ? prompt : decode;
    const LocalLogits a = one.forward(b);
    const std::vector<float> first(a.data, a.data + a.rows * a.cols);
    const LocalLogits c = three.forward(b);
    ASSERT_EQ(a.rows * a.cols, c.rows * c.cols);
    EXPECT_EQ(std::memcmp(first.data(), c.data, first.size() * sizeof(float)), 0)
        << shape << " " << type << (step == 0 ? ": the prompt's logits" : ": a decode token's logits")
        << " on 3 threads differ from 1 thread's";
  }
}

TEST(ThreadCount, DenseLlamaOnThreeThreadsEqualsOne) { expect_three_threads_equal_one("tiny", "Q4_0"); }
TEST(ThreadCount, MixtureOfExpertsOnThreeThreadsEqualsOne) { expect_three_threads_equal_one("tiny-moe", "Q4_0"); }
TEST(ThreadCount, SharedExpertsOnThreeThreadsEqualOne) { expect_three_threads_equal_one("tiny-deepseek3", "Q4_0"); }

}  // namespace
}  // namespace clusterctl::model
