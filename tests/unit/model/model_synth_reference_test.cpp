// Logits of the synthetic llama3-1b models (F16, Q8_0, Q4_0, Q4_K_M, Q6_K) against llama.cpp's
// on the same files (tests/data/reference/synth-llama3-1b-*.json/.bin): a 64-token sequence in
// one batch, mean KL divergence of the stored rows < 1e-3, same top-1 at >= 98 % of positions.
// The models are large and made by `clusterctl model synth` (the command is in each JSON): set
// CLUSTERCTL_SYNTH_DIR to the folder holding llama3-1b-<TYPE>.gguf; without it the test skips.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/unit/model/logit_compare.h"
#include "worker/model/engine.h"

namespace clusterctl::model {
namespace {

using test::kl_divergence;

class SynthLlama3Reference : public ::testing::TestWithParam<const char*> {};

TEST_P(SynthLlama3Reference, LogitsAgreeWithLlamaCpp) {
  const std::string type = GetParam();
  const std::string ref_dir = std::string(CLUSTERCTL_SOURCE_DIR) + "/tests/data/reference/";
  std::ifstream jin(ref_dir + "synth-llama3-1b-" + type + ".json");
  ASSERT_TRUE(jin.good()) << "missing reference for " << type;
  const auto ref = nlohmann::json::parse(jin);
  const char* dir = std::getenv("CLUSTERCTL_SYNTH_DIR");
  const std::string model_path = std::string(dir ? dir : "") + "/llama3-1b-" + type + ".gguf";
  if (!dir || !std::filesystem::exists(model_path))
    GTEST_SKIP() << "set CLUSTERCTL_SYNTH_DIR to a folder with llama3-1b-" << type
                 << ".gguf made by: " << ref["model"]["synth_command"].get<std::string>();
  ASSERT_EQ(std::filesystem::file_size(model_path), ref["model"]["file_size"].get<uint64_t>())
      << model_path << " is not the file the reference was made from";

  gguf::GgufFile f(model_path);
  auto comm = collectives::make_local_communicator();
  const auto ids = ref["token_ids"].get<std::vector<int32_t>>();
  Engine e(f, *comm, {.n_ctx = static_cast<int64_t>(ids.size())});
  Batch b;
  for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i], static_cast<int32_t>(i), 0, true);
  LocalLogits l = e.forward(b);
  const int64_t n_vocab = ref["n_vocab"].get<int64_t>();
  ASSERT_EQ(l.cols, n_vocab);
  ASSERT_EQ(l.rows, static_cast<int64_t>(ids.size()));

  // Top-1 at every position.
  const auto top1 = ref["top1"].get<std::vector<int64_t>>();
  int same = 0;
  for (int64_t r = 0; r < l.rows; ++r) {
    const float* row = l.row(r);
    same += std::max_element(row, row + n_vocab) - row == top1[r];
  }
  EXPECT_GE(same, std::ceil(0.98 * l.rows)) << same << " of " << l.rows << " positions agree on the top token";

  // KL divergence on the stored rows.
  const auto positions = ref["logit_rows"]["positions"].get<std::vector<int64_t>>();
  std::ifstream bin(ref_dir + ref["logit_rows"]["file"].get<std::string>(), std::ios::binary);
  std::vector<float> ref_rows(positions.size() * n_vocab);
  bin.read(reinterpret_cast<char*>(ref_rows.data()), ref_rows.size() * sizeof(float));
  ASSERT_TRUE(bin.good());
  double kl_sum = 0;
  for (size_t i = 0; i < positions.size(); ++i) {
    const double kl = kl_divergence(&ref_rows[i * n_vocab], l.row(positions[i]), n_vocab);
    kl_sum += kl;
    RecordProperty("kl_pos_" + std::to_string(positions[i]), std::to_string(kl));
  }
  const double mean_kl = kl_sum / positions.size();
  std::printf("%s: mean KL %.3g over %zu rows, top-1 agreement %d/%lld\n", type.c_str(), mean_kl, positions.size(),
              same, static_cast<long long>(l.rows));
  EXPECT_LT(mean_kl, 1e-3);

  // The same sequence one token per forward pass (the decode kernels, which sum in another
  // order than the batch's tiles) must agree with llama.cpp as well. Its agreement with our own
  // batch shows how far float summation order alone moves these random models' top tokens.
  Engine alone(f, *comm, {.n_ctx = static_cast<int64_t>(ids.size())});
  int same_alone = 0, same_self = 0;
  double kl_alone = 0;
  size_t next_stored = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    Batch one;
    one.add(ids[i], static_cast<int32_t>(i), 0, true);
    LocalLogits o = alone.forward(one);
    const float* row = o.row(0);
    const int64_t top = std::max_element(row, row + n_vocab) - row;
    same_alone += top == top1[i];
    const float* batch_row = l.row(static_cast<int64_t>(i));
    same_self += top == std::max_element(batch_row, batch_row + n_vocab) - batch_row;
    if (next_stored < positions.size() && positions[next_stored] == static_cast<int64_t>(i))
      kl_alone += kl_divergence(&ref_rows[next_stored++ * n_vocab], row, n_vocab);
  }
  std::printf("%s one token per pass: mean KL %.3g, top-1 agreement %d/%zu with llama.cpp, %d/%zu with our batch\n",
              type.c_str(), kl_alone / positions.size(), same_alone, ids.size(), same_self, ids.size());
  // For scale: llama.cpp's own one-token-per-decode path against its batch on the same file.
  if (ref.contains("llama_cpp_one_token_per_decode")) {
    const auto& own = ref["llama_cpp_one_token_per_decode"];
    std::printf("%s llama.cpp one token per decode vs its own batch: mean KL %.3g, top-1 agreement %d/%zu\n",
                type.c_str(), own["mean_kl_vs_batch_stored_rows"].get<double>(),
                own["top1_agreement_with_batch"].get<int>(), ids.size());
  }
  // And a newer llama.cpp (Aug 2026) against this one.
  if (ref.contains("llama_cpp_newer_batch")) {
    const auto& newer = ref["llama_cpp_newer_batch"];
    std::printf("%s llama.cpp %s batch vs this reference: mean KL %.3g, top-1 agreement %d/%zu\n", type.c_str(),
                newer["llama_cpp_commit"].get<std::string>().substr(0, 8).c_str(),
                newer["mean_kl_vs_reference_stored_rows"].get<double>(),
                newer["top1_agreement_with_reference"].get<int>(), ids.size());
  }
  EXPECT_LT(kl_alone / positions.size(), 1e-3);
  EXPECT_GE(same_alone, std::ceil(0.98 * l.rows))
      << same_alone << " of " << l.rows << " positions agree one token per pass";
}

INSTANTIATE_TEST_SUITE_P(Types, SynthLlama3Reference, ::testing::Values("F16", "Q8_0", "Q4_0", "Q4_K_M", "Q6_K"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace clusterctl::model
