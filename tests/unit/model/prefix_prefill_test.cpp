// The prompt cache's exactness (worker/server/prompt_cache.h) at the engine: a prompt prefilled
// whole, and the same prompt prefilled as a prefix and later the rest (what a request reusing an
// earlier one's prefix runs, in another KV slot, with chunks cut elsewhere), give bit-identical
// logits and the same cached keys and values, for a dense llama, a mixture of experts and
// deepseek2's latent cache.
#include <gtest/gtest.h>

#include <cstring>

#include "tests/unit/model/synth_toy.h"
#include "tests/unit/shared_data.h"
#include "worker/model/engine.h"

namespace clusterctl::model {
namespace {

std::vector<float> last_row(const LocalLogits& l) {
  return std::vector<float>(l.row(l.rows - 1), l.row(l.rows - 1) + l.cols);
}

void expect_prefix_then_rest_equals_whole(const std::string& shape, const std::string& type) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, "testdata/tokenizer/ggml-vocab-llama-spm.gguf");
  SynthToy toy(shape, type, vocab);
  gguf::GgufFile f(toy.path);
  auto comm = collectives::make_local_communicator();
  EngineOptions o;
  o.n_ctx = 64, o.n_slots = 2, o.max_batch = 16, o.threads = 2;
  Engine engine(f, *comm, o);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 45; ++i) prompt.push_back(1 + (i * 37) % 900);
  // Whole: chunks [0,16) [16,32) [32,45) in slot 0.
  const std::vector<float> whole = last_row(engine.prefill(prompt, 0, 0));
  // Prefix of 23 (chunks [0,16) [16,23)), then the rest from position 23 ([23,39) [39,45)) in slot 1.
  const size_t cut = 23;
  engine.prefill(std::vector<int32_t>(prompt.begin(), prompt.begin() + cut), 0, 1);
  const std::vector<float> reused =
      last_row(engine.prefill(std::vector<int32_t>(prompt.begin() + cut, prompt.end()), cut, 1));
  ASSERT_EQ(whole.size(), reused.size());
  EXPECT_EQ(std::memcmp(whole.data(), reused.data(), whole.size() * sizeof(float)), 0)
      << shape << ": the logits after a reused prefix differ from the whole prompt's";
  // Every layer's cached keys of the last position are the same bytes in both slots.
  const KvCache& c = engine.cache();
  auto& cache = const_cast<KvCache&>(c);
  for (int64_t layer = 0; layer < static_cast<int64_t>(engine.hparams().n_layer); ++layer)
    for (int64_t h = 0; h < c.n_heads(); ++h)
      EXPECT_EQ(std::memcmp(cache.key(layer, 0, h, 44), cache.key(layer, 1, h, 44), c.head_dim() * c.elem_bytes()), 0)
          << shape << ": layer " << layer << " head " << h;
}

TEST(PrefixPrefill, DenseLlamaQ4_0) { expect_prefix_then_rest_equals_whole("tiny", "Q4_0"); }
TEST(PrefixPrefill, MixtureOfExperts) { expect_prefix_then_rest_equals_whole("tiny-qwen3moe", "Q8_0"); }
TEST(PrefixPrefill, DeepSeek2LatentCache) { expect_prefix_then_rest_equals_whole("tiny-deepseek3", "Q4_0"); }

}  // namespace
}  // namespace clusterctl::model
