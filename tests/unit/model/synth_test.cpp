// `model synth`: the tensor table and metadata of the shapes, llama-quantize's type choices,
// determinism, weight statistics, and clear errors for bad arguments.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "controller/ssh/sha256.h"
#include "tests/unit/shared_data.h"
#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/kernels.h"
#include "worker/model/hparams.h"
#include "worker/model/synth.h"
#include "worker/tokenizer/tokenizer.h"

namespace clusterctl::model {
namespace {

namespace fs = std::filesystem;
using gguf::GgmlType;

constexpr const char* kSpmVocab = "testdata/tokenizer/ggml-vocab-llama-spm.gguf";  // 32000 tokens
constexpr const char* kBpeVocab = "testdata/tokenizer/ggml-vocab-llama-bpe.gguf";  // 128256 tokens

class SynthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("synth_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  SynthOptions tiny(const std::string& vocab, const std::string& type, const std::string& out, uint64_t seed = 1) {
    SynthOptions o;
    o.shape = "tiny";
    o.type = type;
    o.vocab_path = vocab;
    o.out_path = path(out);
    o.seed = seed;
    o.threads = 2;
    return o;
  }
  fs::path dir_;
};

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

const SynthTensor* find(const std::vector<SynthTensor>& ts, const std::string& name) {
  for (const auto& t : ts)
    if (t.name == name) return &t;
  return nullptr;
}

// Mean and standard deviation of a tensor's dequantised values.
std::pair<double, double> stats(const gguf::GgufFile& f, const std::string& name) {
  const auto& t = f.tensor(name);
  auto data = f.tensor_data(t);
  std::vector<float> row(t.shape[0]);
  double sum = 0, sum2 = 0;
  for (uint64_t r = 0; r < t.rows(); ++r) {
    kernels::dequantize_row(t.type, data.data() + r * t.row_bytes(), row.data(), static_cast<int64_t>(row.size()));
    for (float v : row) sum += v, sum2 += double(v) * v;
  }
  const double n = static_cast<double>(t.n_elements);
  return {sum / n, std::sqrt(sum2 / n - (sum / n) * (sum / n))};
}

TEST(SynthPlan, Llama3_1bTensorTableMatchesTheRealModel) {
  const auto& s = find_synth_shape("llama3-1b");
  const auto ts = plan_synth_tensors(s, find_synth_type("F16"), 128256);
  EXPECT_EQ(ts.size(), 2u + 16 * 9 + 1);  // token_embd, rope_freqs, 9 per layer, output_norm
  EXPECT_EQ(find(ts, "output.weight"), nullptr) << "tied embeddings";
  EXPECT_EQ(find(ts, "token_embd.weight")->shape, (std::vector<uint64_t>{2048, 128256}));
  EXPECT_EQ(find(ts, "rope_freqs.weight")->shape, (std::vector<uint64_t>{32}));
  EXPECT_EQ(find(ts, "blk.15.attn_q.weight")->shape, (std::vector<uint64_t>{2048, 2048}));
  EXPECT_EQ(find(ts, "blk.15.attn_k.weight")->shape, (std::vector<uint64_t>{2048, 512}));
  EXPECT_EQ(find(ts, "blk.15.attn_v.weight")->shape, (std::vector<uint64_t>{2048, 512}));
  EXPECT_EQ(find(ts, "blk.15.attn_output.weight")->shape, (std::vector<uint64_t>{2048, 2048}));
  EXPECT_EQ(find(ts, "blk.0.ffn_gate.weight")->shape, (std::vector<uint64_t>{2048, 8192}));
  EXPECT_EQ(find(ts, "blk.0.ffn_up.weight")->shape, (std::vector<uint64_t>{2048, 8192}));
  EXPECT_EQ(find(ts, "blk.0.ffn_down.weight")->shape, (std::vector<uint64_t>{8192, 2048}));
  EXPECT_EQ(find(ts, "blk.0.attn_norm.weight")->type, GgmlType::F32);
  EXPECT_EQ(find(ts, "blk.0.attn_q.weight")->type, GgmlType::F16);
  uint64_t params = 0;
  for (const auto& t : ts) {
    uint64_t n = 1;
    for (auto d : t.shape) n *= d;
    params += n;
  }
  EXPECT_EQ(params, 1235814432u);  // Llama-3.2-1B's parameter count (with the 32 rope factors)
}

TEST(SynthPlan, QuantizePresetsFollowLlamaQuantize) {
  const auto& s = find_synth_shape("llama3-1b");
  auto q40 = plan_synth_tensors(s, find_synth_type("Q4_0"), 128256);
  EXPECT_EQ(find(q40, "token_embd.weight")->type, GgmlType::Q6_K) << "tied: the embedding is the output";
  EXPECT_EQ(find(q40, "blk.3.attn_v.weight")->type, GgmlType::Q4_0);
  auto q80 = plan_synth_tensors(s, find_synth_type("q8_0"), 128256);
  EXPECT_EQ(find(q80, "token_embd.weight")->type, GgmlType::Q8_0);
  auto km = plan_synth_tensors(s, find_synth_type("Q4_K_M"), 128256);
  const std::set<int> six_bit = {0, 1, 4, 7, 10, 13, 14, 15};  // use_more_bits(i, 16)
  for (int l = 0; l < 16; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const GgmlType want = six_bit.count(l) ? GgmlType::Q6_K : GgmlType::Q4_K;
    EXPECT_EQ(find(km, p + "attn_v.weight")->type, want) << l;
    EXPECT_EQ(find(km, p + "ffn_down.weight")->type, want) << l;
    EXPECT_EQ(find(km, p + "attn_q.weight")->type, GgmlType::Q4_K) << l;
  }
  auto pure = plan_synth_tensors(s, find_synth_type("Q4_0"), 128256, /*pure=*/true);
  EXPECT_EQ(find(pure, "token_embd.weight")->type, GgmlType::Q4_0);
  // Untied: output gets Q6_K, the embedding keeps the base type.
  auto l8 = plan_synth_tensors(find_synth_shape("llama3-8b"), find_synth_type("Q5_K_M"), 128256);
  EXPECT_EQ(find(l8, "output.weight")->type, GgmlType::Q6_K);
  EXPECT_EQ(find(l8, "token_embd.weight")->type, GgmlType::Q5_K);
  EXPECT_EQ(find(l8, "blk.0.attn_q.weight")->shape, (std::vector<uint64_t>{4096, 4096}));
  EXPECT_EQ(find(l8, "blk.0.ffn_down.weight")->shape, (std::vector<uint64_t>{14336, 4096}));
}

// Qwen2.5-0.5B's 896-wide rows are not whole 256-element super-blocks: llama-quantize falls back.
// The low-bit mixes' per-tensor types equal llama-quantize's: the digests are of "name TYPE" lines
// of every tensor (in the table's order) as llama.cpp 3f545bec's llama_model_quantize chose them
// (a dry run on F16 files of these shapes; for the IQ1-IQ3 mixes with an importance matrix
// given, as those quantisers require and the files people download are made).
TEST(SynthPlan, LowBitMixesFollowLlamaQuantize) {
  struct Case {
    const char* shape;
    const char* type;
    const char* sha256;
  };
  for (const Case& c :
       {Case{"llama3-1b", "Q2_K", "9bbe2d58f440b4072a1efa179c40127c4567522132d403beab9ab6f104d5ba8e"},
        Case{"llama3-1b", "Q3_K_S", "dadaa132404f1a61916302d57425806c6ceeb11516da8c2ac1084cebfca7bf4e"},
        Case{"llama3-1b", "Q3_K_M", "774b0b13ffb387c14fd2c27ef6805b47a21aef0c886bcaae3ff8e4a793677661"},
        Case{"llama3-1b", "Q3_K_L", "2339226030432c337181da265ca797280ea09a665b7f63421ec976ded3e23151"},
        Case{"llama3-1b", "IQ4_NL", "493e7ece6e2d5711daacd1f2d0161ade97f58830563d783d14a747c81300390b"},
        Case{"llama3-1b", "IQ4_XS", "075a437b12e0049e6e80ac9483f7e653e7ad463ef57115b22a966caf9734418e"},
        Case{"llama3-8b", "Q2_K", "7f6f1a610524c5b688467f884cd14ac28306f3dd3831c26ecbe711aec3a522b7"},
        Case{"llama3-8b", "Q3_K_S", "38736a191d7ebb8ff1f6245822ced377820608180fdf08f148b970f0e29ce8fb"},
        Case{"llama3-8b", "Q3_K_M", "668fc5bc3fab88df8105e3f7a9b53b2b91df4fb99f7237d21ccf3c15f2817656"},
        Case{"llama3-8b", "Q3_K_L", "c5d40517d49ddfe495416cbe690b83d31750d86bc720bfb4ab3f01033f6af98f"},
        Case{"llama3-8b", "IQ4_NL", "bc74ca071600cec81022a844ae597f0798c6229bc213cdb2e3d2d233104a44ea"},
        Case{"llama3-8b", "IQ4_XS", "994a04c4db92b3e249b7fa9efcf5bb7484807f3a24879d1aafeed61963cf8704"},
        Case{"llama3-1b", "IQ1_S", "64fc0355db799d81192b4b820e3bc62806e9876c02be68a4a709a975135044da"},
        Case{"llama3-1b", "IQ1_M", "580aaa19935d482352c09785d6b176f92795b4ef2a40a0250aea41fb8b9b767d"},
        Case{"llama3-1b", "IQ2_XXS", "fe27d8763a4140f4ed0ef326ae065b83448ea9c441bf2e64016a62d5c0eaadd9"},
        Case{"llama3-1b", "IQ2_XS", "4d35bae5ea9b407e18bed859a2724d6ad56df1c261bf741c01ad4d8173d42630"},
        Case{"llama3-1b", "IQ2_S", "dad17309ac8498c9e18db693e96d61e7e3d32359595a3e51e45551f1bac33b05"},
        Case{"llama3-1b", "IQ2_M", "f8cb813b7dbe8470707a0c63b56d69535f93e0b2f4c0259d86097884a820f96a"},
        Case{"llama3-1b", "IQ3_XXS", "e354c4c9d0d9c17eabdfdeb5992a5985621cb3a838abe0a9c62998e1202abd64"},
        Case{"llama3-1b", "IQ3_XS", "49fae2fe97390b4a5cf342dfe78fd38fc2cc1a1659b5f944ea0eaa7d4cd02736"},
        Case{"llama3-1b", "IQ3_S", "d5eff19f64ce6df9606371a985b4357eabb209d14734299d6160038295095a62"},
        Case{"llama3-1b", "IQ3_M", "dd5bc91becb3c02da75ce62ec7645e68c1d573a9a44757c521c234148c706103"},
        Case{"llama3-8b", "IQ1_S", "76a8385b96987d4ab24fe8c8eaab405d108bbbe9b7cd12725d6a799e6557cec6"},
        Case{"llama3-8b", "IQ1_M", "91d2b2cac4cad2e6c4e2accccf4bc01e4438106babacec22ba32042cd1d422c4"},
        Case{"llama3-8b", "IQ2_XXS", "594cff757ec951236070b806628e99840fa6e7bc262e6a8918a4212fcede6ed6"},
        Case{"llama3-8b", "IQ2_XS", "4fd0fe334eff53e45a557acae30bbe3662e7a253d21310db7343f3dbacb31ee6"},
        Case{"llama3-8b", "IQ2_S", "c68c26b66d92550cde8e6d7a95e63858ba243b0a05830aa3ba9521eeb22542da"},
        Case{"llama3-8b", "IQ2_M", "fa92a9d90f95e328adffa78b5272f4d9e279d2cb3a03ca4b1231360f9ca2d93f"},
        Case{"llama3-8b", "IQ3_XXS", "b565b23ba9130b7e52186f584a792d320836ae490bb8410aac443ea0fc51b3fe"},
        Case{"llama3-8b", "IQ3_XS", "23ee83e4e18f2e7e4471804501581093cf832f157aa02061c732a08531aa2d13"},
        Case{"llama3-8b", "IQ3_S", "43e65193c4315fd4427c7649a07b1074746cd31801c6b2e9a2ac05784e48c8b5"},
        Case{"llama3-8b", "IQ3_M", "3ba5e100fb867271e6579dc564bc446d30ca510cef0798ef3826dc8d6ded8548"}}) {
    std::string lines;
    for (const auto& t : plan_synth_tensors(find_synth_shape(c.shape), find_synth_type(c.type), 128256))
      lines += t.name + " " + std::string(gguf::type_name(t.type)) + "\n";
    ssh::Sha256 h;
    h.update(lines.data(), lines.size());
    EXPECT_EQ(h.hex_digest(), c.sha256) << c.shape << " " << c.type << ":\n" << lines.substr(0, 600);
  }
}

TEST(SynthPlan, QwenFallsBackWhereKQuantsDoNotFit) {
  auto ts = plan_synth_tensors(find_synth_shape("qwen2.5-0.5b"), find_synth_type("Q4_K_M"), 151936);
  EXPECT_EQ(find(ts, "token_embd.weight")->type, GgmlType::Q8_0);
  EXPECT_EQ(find(ts, "blk.2.attn_q.weight")->type, GgmlType::Q5_0);
  EXPECT_EQ(find(ts, "blk.0.attn_v.weight")->type, GgmlType::Q8_0);    // Q6_K -> Q8_0
  EXPECT_EQ(find(ts, "blk.4.ffn_down.weight")->type, GgmlType::Q4_K);  // 4864 = 19 x 256
  EXPECT_EQ(find(ts, "blk.5.ffn_down.weight")->type, GgmlType::Q6_K);  // use_more_bits(5, 24)
  EXPECT_EQ(find(ts, "blk.0.attn_q.bias")->shape, (std::vector<uint64_t>{896}));
  EXPECT_EQ(find(ts, "blk.0.attn_k.bias")->shape, (std::vector<uint64_t>{128}));
  EXPECT_EQ(find(ts, "blk.0.attn_q.bias")->type, GgmlType::F32);
  auto q3 = plan_synth_tensors(find_synth_shape("qwen3-0.6b"), find_synth_type("F16"), 151936);
  EXPECT_EQ(find(q3, "blk.0.attn_q_norm.weight")->shape, (std::vector<uint64_t>{128}));
  EXPECT_EQ(find(q3, "blk.0.attn_q.weight")->shape, (std::vector<uint64_t>{1024, 2048}));
}

// Mixtures of experts: the router stays F32, the experts are 3-D, ffn_down_exps takes Q4_K_M's
// extra bits where ffn_down would; qwen3moe states the experts' width beside the dense one.
TEST(SynthPlan, ExpertsHaveRealShapesAndTypes) {
  auto q = plan_synth_tensors(find_synth_shape("qwen3-30b-a3b"), find_synth_type("Q4_K_M"), 151936);
  EXPECT_EQ(find(q, "blk.0.ffn_gate_inp.weight")->shape, (std::vector<uint64_t>{2048, 128}));
  EXPECT_EQ(find(q, "blk.0.ffn_gate_inp.weight")->type, GgmlType::F32);
  EXPECT_EQ(find(q, "blk.0.ffn_gate_exps.weight")->shape, (std::vector<uint64_t>{2048, 768, 128}));
  EXPECT_EQ(find(q, "blk.0.ffn_gate_exps.weight")->type, GgmlType::Q4_K);
  EXPECT_EQ(find(q, "blk.0.ffn_down_exps.weight")->shape, (std::vector<uint64_t>{768, 2048, 128}));
  EXPECT_EQ(find(q, "blk.0.ffn_down_exps.weight")->type, GgmlType::Q6_K);  // use_more_bits(0, 48)
  EXPECT_EQ(find(q, "blk.6.ffn_down_exps.weight")->type, GgmlType::Q4_K);
  EXPECT_EQ(find(q, "blk.0.attn_q.weight")->shape, (std::vector<uint64_t>{2048, 4096}));
  EXPECT_EQ(find(q, "blk.0.ffn_gate.weight"), nullptr);
  auto m = plan_synth_tensors(find_synth_shape("mixtral-8x7b"), find_synth_type("Q4_0"), 32000);
  EXPECT_EQ(find(m, "blk.31.ffn_up_exps.weight")->shape, (std::vector<uint64_t>{4096, 14336, 8}));
}

TEST_F(SynthTest, TinyQwen3MoeHasExpertMetadata) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, kSpmVocab);
  auto o = tiny(vocab, "Q8_0", "tiny-qwen3moe.gguf");
  o.shape = "tiny-qwen3moe";
  synth_model(o);
  gguf::GgufFile f(o.out_path);
  const HParams h = HParams::from_gguf(f);
  EXPECT_EQ(h.arch, "qwen3moe");
  EXPECT_EQ(h.n_expert, 16u);
  EXPECT_EQ(h.n_expert_used, 4u);
  EXPECT_EQ(h.n_ff, 256u);  // expert_feed_forward_length, not the dense feed_forward_length
  EXPECT_EQ(f.get_int("qwen3moe.feed_forward_length"), 1024);
}

TEST_F(SynthTest, TinyLoadsWithTheRightTableAndMetadata) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, kSpmVocab);
  const auto o = tiny(vocab, "Q4_K_M", "tiny.gguf");
  std::vector<std::string> log;
  auto o2 = o;
  o2.log = [&](const std::string& l) { log.push_back(l); };
  const uint64_t size = synth_model(o2);
  EXPECT_FALSE(fs::exists(o.out_path + ".tmp"));
  EXPECT_EQ(size, fs::file_size(o.out_path));
  EXPECT_GE(log.size(), 20u) << "a line per tensor";

  gguf::GgufFile f(o.out_path);
  const auto plan = plan_synth_tensors(find_synth_shape("tiny"), find_synth_type("Q4_K_M"), 32000);
  ASSERT_EQ(f.tensors().size(), plan.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(f.tensors()[i].name, plan[i].name);
    EXPECT_EQ(f.tensors()[i].type, plan[i].type) << plan[i].name;
    EXPECT_EQ(f.tensors()[i].shape, plan[i].shape) << plan[i].name;
  }
  EXPECT_EQ(f.find_tensor("output.weight")->type, GgmlType::Q6_K);
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->type, GgmlType::Q4_K);

  const HParams h = HParams::from_gguf(f);
  EXPECT_EQ(h.arch, "llama");
  EXPECT_EQ(h.n_embd, 256u);
  EXPECT_EQ(h.n_layer, 2u);
  EXPECT_EQ(h.n_head, 4u);
  EXPECT_EQ(h.n_head_kv, 2u);
  EXPECT_EQ(h.n_ff, 512u);
  EXPECT_EQ(h.n_vocab, 32000u);
  EXPECT_EQ(h.head_dim, 64u);
  EXPECT_EQ(f.get_int("general.file_type"), 15);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model", ""), "llama");
  gguf::GgufFile v(vocab);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens"), v.get_string_array("tokenizer.ggml.tokens"));
}

TEST_F(SynthTest, WeightsHaveTheIntendedDistributions) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, kSpmVocab);
  const auto o = tiny(vocab, "F32", "tiny.gguf");
  synth_model(o);
  gguf::GgufFile f(o.out_path);
  auto [m_emb, s_emb] = stats(f, "token_embd.weight");
  EXPECT_NEAR(m_emb, 0.0, 0.002);
  EXPECT_NEAR(s_emb, 1.5 / 16, 0.002);  // 1.5 / sqrt(256)
  auto [m_q, s_q] = stats(f, "blk.0.attn_q.weight");
  EXPECT_NEAR(m_q, 0.0, 0.002);
  EXPECT_NEAR(s_q, 1.0 / 16, 0.002);  // 1 / sqrt(fan_in 256)
  auto [m_d, s_d] = stats(f, "blk.1.ffn_down.weight");
  EXPECT_NEAR(s_d, 1.0 / std::sqrt(512.0), 0.002);
  auto [m_n, s_n] = stats(f, "blk.1.attn_norm.weight");
  EXPECT_NEAR(m_n, 1.0, 0.02);
  EXPECT_GT(s_n, 0.02);  // not a constant: mis-indexed norms would show
  // Different tensors get different values.
  auto a = f.tensor_data(f.tensor("blk.0.ffn_gate.weight"));
  auto b = f.tensor_data(f.tensor("blk.0.ffn_up.weight"));
  EXPECT_FALSE(std::equal(a.begin(), a.end(), b.begin()));
}

// The IQ1-IQ3 types have no quantiser here: their tensors are random valid blocks of the
// tensor's intended RMS, and synth says so.
TEST_F(SynthTest, IqTypesAreRandomBlocksOfTheIntendedRmsAndSaySo) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, kSpmVocab);
  for (const char* type : {"IQ2_XXS", "IQ1_M", "IQ3_S"}) {
    auto o = tiny(vocab, type, "iq.gguf");
    o.pure = true;
    std::vector<std::string> log;
    o.log = [&](const std::string& l) { log.push_back(l); };
    synth_model(o);
    bool said = false;
    for (const auto& l : log)
      said |= l.find(std::string("the ") + type + " tensors are random valid blocks") != std::string::npos;
    EXPECT_TRUE(said) << type;
    gguf::GgufFile f(o.out_path);
    EXPECT_EQ(f.tensor("blk.0.attn_q.weight").type, *gguf::type_from_name(type));
    auto [m_q, s_q] = stats(f, "blk.0.attn_q.weight");
    EXPECT_NEAR(m_q, 0.0, 0.003) << type;
    EXPECT_NEAR(s_q, 1.0 / 16, 0.002) << type;  // 1 / sqrt(fan_in 256), as the float weights
    auto a = f.tensor_data(f.tensor("blk.0.ffn_gate.weight"));
    auto b = f.tensor_data(f.tensor("blk.0.ffn_up.weight"));
    EXPECT_FALSE(std::equal(a.begin(), a.end(), b.begin())) << type;
  }
}

TEST_F(SynthTest, SameSeedSameBytesOtherSeedOtherBytes) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, kSpmVocab);
  auto a = tiny(vocab, "Q4_0", "a.gguf", 7);
  auto b = tiny(vocab, "Q4_0", "b.gguf", 7);
  b.threads = 1;  // the thread count must not matter
  auto c = tiny(vocab, "Q4_0", "c.gguf", 8);
  a.pure = b.pure = c.pure = true;  // quick: no Q6_K output matrix
  synth_model(a);
  synth_model(b);
  synth_model(c);
  EXPECT_EQ(slurp(a.out_path), slurp(b.out_path));
  EXPECT_NE(slurp(a.out_path), slurp(c.out_path));
}

// --distinct-rows N (the quick fill of big benchmark files): row i of every tensor is row i % N as
// the full draw makes it, and N at least the rows of every tensor is the full draw itself.
TEST_F(SynthTest, DistinctRowsRepeatTheFullDrawsFirstRows) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, kSpmVocab);
  auto full = tiny(vocab, "Q4_0", "full.gguf");
  auto all = tiny(vocab, "Q4_0", "all.gguf");
  auto four = tiny(vocab, "Q4_0", "four.gguf");
  full.pure = all.pure = four.pure = true;
  all.distinct_rows = 1u << 30;
  four.distinct_rows = 4;
  synth_model(full);
  synth_model(all);
  synth_model(four);
  EXPECT_EQ(slurp(full.out_path), slurp(all.out_path));
  gguf::GgufFile f(full.out_path), r(four.out_path);
  int repeated = 0;
  for (const auto& t : r.tensors()) {
    if (t.rows() <= 4) continue;
    const auto a = f.tensor_data(*f.find_tensor(t.name)), b = r.tensor_data(t);
    const uint64_t rb = t.row_bytes();
    for (uint64_t i = 0; i < t.rows(); ++i)
      ASSERT_TRUE(std::equal(b.begin() + i * rb, b.begin() + (i + 1) * rb, a.begin() + (i % 4) * rb))
          << t.name << " row " << i;
    ++repeated;
  }
  EXPECT_GT(repeated, 5);
}

// A sparse file is the full-size model's header over a hole: the same size and tensor table as the
// real file, and next to no disk (what `plan` sizes a cluster by before the hardware is bought).
TEST_F(SynthTest, SparseFileHasTheRealLayoutAndUsesNoDisk) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, kSpmVocab);
  auto real = tiny(vocab, "Q8_0", "real.gguf");
  auto sparse = tiny(vocab, "Q8_0", "sparse.gguf");
  sparse.sparse = true;
  synth_model(real);
  synth_model(sparse);
  EXPECT_EQ(fs::file_size(real.out_path), fs::file_size(sparse.out_path));
  struct stat st {};
  ASSERT_EQ(::stat(sparse.out_path.c_str(), &st), 0);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, fs::file_size(sparse.out_path) / 4)
      << "the tensor data was written, not left a hole";
  gguf::GgufFile a(real.out_path), b(sparse.out_path);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    EXPECT_EQ(a.tensors()[i].name, b.tensors()[i].name);
    EXPECT_EQ(a.tensors()[i].shape, b.tensors()[i].shape);
    EXPECT_EQ(a.tensors()[i].type, b.tensors()[i].type);
    EXPECT_EQ(a.tensors()[i].offset, b.tensors()[i].offset);
  }
  // Split and sparse: the parts are as gguf-split would cut the real file.
  auto parts = tiny(vocab, "Q8_0", "parts.gguf");
  parts.sparse = true, parts.parts = 2;
  synth_model(parts);
  gguf::GgufFile c(path("parts-00001-of-00002.gguf"));
  EXPECT_EQ(c.part_count(), 2u);
  EXPECT_EQ(c.tensors().size(), a.tensors().size());
}

// Presets as llama-quantize makes them; plain types --pure (every matrix in the type), which
// also keeps the test quick (the 32000-row Q6_K output matrix is the slow part).
TEST_F(SynthTest, EveryTypeWritesALoadableFile) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, kSpmVocab);
  for (const auto& t : synth_types()) {
    auto o = tiny(vocab, t.name, "t.gguf");
    o.pure = !t.k_mix && t.name != "Q4_0";
    synth_model(o);
    gguf::GgufFile f(o.out_path);
    EXPECT_EQ(f.get_int("general.file_type"), t.file_type) << t.name;
    EXPECT_EQ(f.tensor("output.weight").type, o.pure ? t.base : GgmlType::Q6_K) << t.name;
    EXPECT_EQ(f.tensor("blk.0.attn_q.weight").type, t.base) << t.name;
    for (const auto& ti : f.tensors()) EXPECT_TRUE(kernels::is_computable(ti.type)) << t.name << " " << ti.name;
  }
}

uint64_t fnv1a(uint64_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

// Bit-compatibility with ggml: the blk.* matrices of `synth --shape tiny --type F32 --seed 4`
// (llama-spm vocabulary) were quantised by llama.cpp's llama-quantize (commit c392e509,
// `llama-quantize --pure tiny-f32.gguf out.gguf TYPE`, TYPE Q4_K_S / Q5_K_S for Q4_K / Q5_K);
// the FNV-1a 64 hashes of its output bytes (tensors in synth's order) are below. Our quantize_row must produce the same
// bytes.
TEST_F(SynthTest, QuantisedBytesMatchLlamaQuantize) {
  CLUSTERCTL_REQUIRE_SHARED(vocab, kSpmVocab);
  const auto o = tiny(vocab, "F32", "f32.gguf", 4);
  synth_model(o);
  gguf::GgufFile f(o.out_path);
  std::vector<const gguf::TensorInfo*> matrices;
  uint64_t input_hash = 0xcbf29ce484222325ull;
  for (const auto& t : f.tensors()) {
    if (!t.name.starts_with("blk.") || t.shape.size() < 2) continue;
    matrices.push_back(&t);
    auto d = f.tensor_data(t);
    input_hash = fnv1a(input_hash, d.data(), d.size());
  }
  ASSERT_EQ(input_hash, 0xba0b8443da78fbfcull)
      << "synth's random values changed: the reference hashes below are for the old values; "
         "derive them again with llama-quantize as described above";
  const std::pair<GgmlType, uint64_t> expected[] = {
      {GgmlType::Q4_0, 0xe581ccb8b7076ac5ull}, {GgmlType::Q4_1, 0x8fa2b7d60b7ce813ull},
      {GgmlType::Q5_0, 0x49ea04c755187803ull}, {GgmlType::Q5_1, 0x835a4eba57b494e0ull},
      {GgmlType::Q8_0, 0x9d99525933e62533ull}, {GgmlType::Q4_K, 0xa4d1ac50f1b0c0c4ull},
      {GgmlType::Q5_K, 0x2d303aeadb7aa393ull}, {GgmlType::Q6_K, 0x43ee712cd592e9b9ull},
      {GgmlType::F16, 0xd7045f31bdad2b0cull},  {GgmlType::BF16, 0x266a185c8344f420ull},
  };
  for (const auto& [type, want] : expected) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const auto* t : matrices) {
      const auto* x = reinterpret_cast<const float*>(f.tensor_data(*t).data());
      std::vector<uint8_t> q(gguf::row_bytes(type, t->shape[0]));
      for (uint64_t r = 0; r < t->rows(); ++r) {
        kernels::quantize_row(type, x + r * t->shape[0], q.data(), static_cast<int64_t>(t->shape[0]));
        h = fnv1a(h, q.data(), q.size());
      }
    }
    EXPECT_EQ(h, want) << gguf::type_name(type) << " bytes differ from llama-quantize's";
  }
}

void expect_error(const SynthOptions& o, const std::vector<std::string>& fragments) {
  try {
    synth_model(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    for (const auto& frag : fragments) EXPECT_NE(std::string(e.what()).find(frag), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(o.out_path));
  EXPECT_FALSE(fs::exists(o.out_path + ".tmp"));
}

TEST_F(SynthTest, BadArgumentsGiveClearErrors) {
  CLUSTERCTL_REQUIRE_SHARED(spm, kSpmVocab);
  auto o = tiny(spm, "Q4_0", "x.gguf");
  o.shape = "llama3-1b";
  expect_error(o, {"32000 tokens", "llama3-1b", "128256", "--pad-vocab"});
  o = tiny(spm, "Q4_0", "x.gguf");
  o.shape = "llama-7b";
  expect_error(o, {"unknown model shape 'llama-7b'", "llama3-1b", "tiny"});
  o = tiny(spm, "TQ1_0", "x.gguf");
  expect_error(o, {"unknown model type 'TQ1_0'", "Q4_K_M", "IQ2_XXS"});
  o = tiny(path("missing.gguf"), "Q4_0", "x.gguf");
  expect_error(o, {"missing.gguf"});
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  o = tiny(model, "Q4_0", "x.gguf");  // a model, but it has a vocabulary: accepted
  synth_model(o);
  std::ofstream(path("not_gguf.bin")) << "hello";
  o = tiny(path("not_gguf.bin"), "Q4_0", "y.gguf");
  expect_error(o, {"not_gguf.bin"});
}

// With no vocabulary file (a fresh machine), tiny gets a built-in byte-level SentencePiece
// vocabulary: any text must survive tokenize -> detokenize.
TEST_F(SynthTest, TinyWithoutAVocabularyFileGetsABuiltInOne) {
  auto o = tiny("", "Q8_0", "builtin.gguf");
  synth_model(o);
  gguf::GgufFile f(o.out_path);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model", ""), "llama");
  auto tok = tokenizer::Tokenizer::from_gguf(f);
  ASSERT_TRUE(tok);
  const std::string text = "Hello, world! Grüße \xF0\x9F\xA6\x99 42";
  auto ids = tok->tokenize(text, /*add_special=*/false, /*parse_special=*/false);
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(tok->detokenize(ids), text);
  EXPECT_EQ(model::HParams::from_gguf(f).n_vocab, f.get_string_array("tokenizer.ggml.tokens").size());

  o = tiny("", "Q8_0", "big.gguf");
  o.shape = "llama3-1b";
  expect_error(o, {"llama3-1b needs a vocabulary of 128256 tokens", "--vocab"});
}

}  // namespace
}  // namespace clusterctl::model
