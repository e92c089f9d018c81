// Sampled speculative decoding keeps the target's distribution: many seeded runs of a tiny model
// (`model synth`, two layers, its built-in byte vocabulary) through the real decode loop and step
// protocol (world size 1), against the exact distribution computed from the target's logits.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "collectives/communicator.h"
#include "tests/unit/speculative/chi_square.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/engine.h"
#include "worker/model/quantize.h"
#include "worker/model/synth.h"
#include "worker/parallel/step_protocol.h"
#include "worker/speculative/model_drafter.h"
#include "worker/speculative/speculative_decode.h"

namespace clusterctl::speculative {
namespace {

namespace fs = std::filesystem;

class SpeculativeSampling : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("speculative_sampling_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    model::SynthOptions o;
    o.shape = "tiny";
    o.type = "F32";
    o.threads = 1;
    o.out_path = path("target");
    model::synth_model(o);
    // The drafts: its Q8_0 copy (close to it) and its Q2_K copy (far enough that many drafts are refused).
    for (const char* type : {"Q8_0", "Q2_K"}) {
      model::QuantizeOptions q;
      q.in_path = path("target");
      q.out_path = path(type);
      q.type = type;
      q.threads = 1;
      model::quantize_model(q);
    }
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string path(const std::string& name) { return (dir_ / (name + ".gguf")).string(); }
  static fs::path dir_;
};
fs::path SpeculativeSampling::dir_;

// Trials: after a fixed prompt and first token x0, a round drafts 2 tokens; the two tokens that
// follow x0 (t1, t2) must be distributed as the target's sampler draws them: p(t1) p(t2 | t1).
void expect_target_distribution(const std::string& target_path, const std::string& draft_path, int trials,
                                bool expect_power) {
  gguf::GgufFile file(target_path);
  auto comm = collectives::make_local_communicator();
  model::EngineOptions eo;
  eo.n_ctx = 64;
  eo.n_slots = 2;  // slot 1: the exact distribution
  eo.threads = 1;
  model::Engine engine(file, *comm, eo);
  const int64_t V = engine.hparams().n_vocab;
  sampling::SamplerParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 5;
  sp.top_p = 1.0f;
  sp.min_p = 0.0f;
  const std::vector<int32_t> prompt = {1, 72, 101, 108};  // BOS "Hel" (bytes + 3 in the built-in vocabulary)
  const int32_t x0 = 111;
  const int32_t n0 = static_cast<int32_t>(prompt.size());

  // The exact joint distribution, from the target's logits on slot 1 (the verify pass's kernels).
  sampling::Sampler exact(V, sp);
  std::map<std::pair<int32_t, int32_t>, double> joint;
  engine.prefill(prompt, 0, 1);
  model::Batch b;
  b.add(x0, n0, 1, true);
  b.n_decode = 1;
  const auto p1 = exact.distribution(engine.forward(b).row(0));
  for (const auto& c1 : p1) {
    b.clear();
    b.add(x0, n0, 1, false);
    b.add(c1.id, n0 + 1, 1, true);
    b.n_decode = 2;
    const auto p2 = exact.distribution(engine.forward(b).row(0));
    for (const auto& c2 : p2) joint[{c1.id, c2.id}] = static_cast<double>(c1.p) * c2.p;
  }

  DraftTarget dt{gguf::GgufFile(target_path).get_string_array("tokenizer.ggml.tokens"), engine.n_ctx(), 2, 1};
  ModelDrafter drafter(draft_path, dt);
  parallel::StepLeader leader(engine);
  leader.step(prompt, 0, 0, 0);
  std::map<std::pair<int32_t, int32_t>, int64_t> seen;
  int64_t outside = 0, drafted = 0, accepted = 0;
  for (int t = 0; t < trials; ++t) {
    sampling::SamplerParams seeded = sp;
    seeded.seed = 1000 + static_cast<uint64_t>(t);
    sampling::Sampler s(V, seeded);
    DraftLength length(2, 2);
    SpecRequest req{prompt, x0, 4, {}, 0, false};
    SpecStats st;
    const auto out = decode_speculative(
        leader, drafter, length, s, req, [](int32_t) { return true; }, &st);
    ASSERT_GE(out.size(), 3u);
    drafted += st.drafted;
    accepted += st.accepted;
    const std::pair<int32_t, int32_t> key{out[1], out[2]};
    if (joint.count(key))
      ++seen[key];
    else
      ++outside;
  }
  EXPECT_EQ(outside, 0) << "token pairs the target's sampler never draws";
  std::vector<double> expected;
  std::vector<int64_t> observed;
  for (const auto& [key, p] : joint) {
    expected.push_back(p);
    observed.push_back(seen[key]);
  }
  const auto c = test::chi_square(expected, observed);
  EXPECT_LT(c.statistic, c.bound) << "df " << c.df << ", " << accepted << " of " << drafted << " drafts kept";
  std::printf("chi-square %.1f (bound %.1f, df %d); %lld of %lld drafts kept\n", c.statistic, c.bound, c.df,
              static_cast<long long>(accepted), static_cast<long long>(drafted));
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, drafted);
  if (expect_power) {
    // Emitting the draft's tokens unchecked would fail: its own joint distribution is far off.
    sampling::Sampler dq(V, sp);
    gguf::GgufFile dfile(draft_path);
    model::Engine dengine(dfile, *comm, eo);
    std::vector<double> q(expected.size(), 0.0);
    dengine.prefill(prompt, 0, 0);
    model::Batch db;
    db.add(x0, n0, 0, true);
    db.n_decode = 1;
    const auto q1 = dq.distribution(dengine.forward(db).row(0));
    std::vector<sampling::TokenProb> q1c(q1.begin(), q1.end());
    for (const auto& c1 : q1c) {
      db.clear();
      db.add(x0, n0, 0, false);
      db.add(c1.id, n0 + 1, 0, true);
      db.n_decode = 2;
      for (const auto& c2 : dq.distribution(dengine.forward(db).row(0))) {
        size_t i = 0;
        for (const auto& [key, p] : joint) {
          if (key == std::pair{c1.id, c2.id}) q[i] = static_cast<double>(c1.p) * c2.p;
          ++i;
        }
      }
    }
    EXPECT_GT(test::non_centrality(expected, q, trials), 10 * c.bound);
  }
}

// The target's Q2_K copy: many drafts refused, the residual norm(max(0, p - q)) draws.
TEST_F(SpeculativeSampling, LossyDraftKeepsTheTargetsDistribution) {
  expect_target_distribution(path("target"), path("Q2_K"), 3000, true);
}

// The target's Q8_0 copy: most drafts kept.
TEST_F(SpeculativeSampling, CloseDraftKeepsTheTargetsDistribution) {
  expect_target_distribution(path("target"), path("Q8_0"), 3000, false);
}

}  // namespace
}  // namespace clusterctl::speculative
