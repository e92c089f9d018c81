// `model quantize` makes llama-quantize's file byte for byte. The digests are of llama-quantize's
// output for ../shared/models/stories260K.gguf (F32), made with llama.cpp 3f545bec (Aug 2026, the
// ngxson/llama.cpp mirror; the project's reference commit c392e509 refuses the 172-wide ffn_down
// rows of this model where 3f545bec falls back to F16) through llama_model_quantize() with its
// default parameters, one thread.
#include <gtest/gtest.h>

#include <filesystem>

#include "controller/ssh/sha256.h"
#include "tests/unit/shared_data.h"
#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/engine.h"
#include "worker/model/quantize.h"
#include "worker/model/synth.h"

namespace clusterctl::model {
namespace {
namespace fs = std::filesystem;

class Quantize : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("quantize_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

struct Expected {
  const char* type;
  const char* sha256;
};

TEST_F(Quantize, Stories260KIsLlamaQuantizesFileByteForByte) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  for (const Expected& e : {Expected{"F16", "4cd29bbe9cb3b735750837816a43c3dd4b473dbd658e8612816f7c4d3926ac21"},
                            Expected{"BF16", "633551c4cd934c2090c88fd56a8e7b1263b1bc6e91b22e41f398a16f4245ebb0"},
                            Expected{"Q4_K_M", "7f61512f1889080c73b2afd3ac7fdfe55a368e83570b20e5019829adfa734a2a"},
                            Expected{"Q5_K_M", "017253a152346d29609472739647c6c1136557abaad67c24e6966fccd07eafda"},
                            Expected{"Q6_K", "137d1fbe834a43bc20cc1e04a9459af61953a7579baeedba17590faacfb13104"}}) {
    QuantizeOptions o;
    o.in_path = model, o.out_path = path(std::string(e.type) + ".gguf"), o.type = e.type, o.threads = 2;
    quantize_model(o);
    EXPECT_EQ(ssh::sha256_file(o.out_path), e.sha256) << e.type;
  }
  // --pure: every matrix in the base type where its rows allow.
  QuantizeOptions o;
  o.in_path = model, o.out_path = path("pure.gguf"), o.type = "Q4_K_M", o.pure = true;
  quantize_model(o);
  EXPECT_EQ(ssh::sha256_file(o.out_path), "7a72298a8c174a409a1318a3df06c908c23fc571989a356273f0d1bb28c7cd58");
  // The copy runs: one token's logits.
  gguf::GgufFile f(path("Q4_K_M.gguf"));
  auto comm = collectives::make_local_communicator();
  Engine engine(f, *comm, {.n_ctx = 8});
  Batch b;
  b.add(1, 0, 0, true);
  EXPECT_EQ(engine.forward(b).rows, 1);
}

TEST_F(Quantize, WhatLlamaQuantizeRefusesIsRefusedByName) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  auto refused = [&](const std::string& in, const std::string& type, const std::string& says) {
    QuantizeOptions o;
    o.in_path = in, o.out_path = path("out.gguf"), o.type = type;
    try {
      quantize_model(o);
      ADD_FAILURE() << type << " of " << in << " was made";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(o.out_path)) << "a refused quantisation left a file";
  };
  // ffn_down's 172-value rows fit no Q8_0 or Q4_0 block, and llama-quantize has no fallback for them.
  refused(model, "Q8_0", "tensor 'blk.0.ffn_down.weight'");
  refused(model, "Q4_0", "no fallback for Q4_0");
  refused(model, "Q4_K", "means Q4_K_M to llama-quantize");
  QuantizeOptions o;
  o.in_path = model, o.out_path = path("q6.gguf"), o.type = "Q6_K";
  quantize_model(o);
  refused(path("q6.gguf"), "Q4_K_M", "quantize from the F32, F16 or BF16 model");
  // The IQ1-IQ3 mixes need an importance matrix for their IQ tensors (llama-quantize --imatrix).
  SynthOptions so;
  so.shape = "tiny", so.type = "F32", so.out_path = path("tiny-f32.gguf");
  synth_model(so);
  refused(path("tiny-f32.gguf"), "IQ2_XXS", "importance matrix");
  refused(path("tiny-f32.gguf"), "IQ3_M", "tensor 'token_embd.weight' would be IQ3_S");
}

}  // namespace
}  // namespace clusterctl::model
