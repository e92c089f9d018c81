// The planner's arithmetic (controller/placement/throughput_model.h): which term limits a pass and
// how the figures follow from bytes, bandwidth, hops and latency. No speed of this machine is
// measured or asserted here.
#include <gtest/gtest.h>

#include <cmath>

#include "controller/placement/throughput_model.h"
#include "worker/common/error.h"

using namespace clusterctl;
using namespace clusterctl::placement;

namespace {

// `nodes` nodes of 100 GB/s and 1000 GFLOPS, one rank each holding 1 GB of dense weights
// (0.5 G weights), over `link`.
ClusterModel dense_cluster(int nodes, std::optional<LinkSpeed> link) {
  ClusterModel m;
  for (int n = 0; n < nodes; ++n) {
    m.nodes.push_back({100, 1000});
    m.ranks.push_back({static_cast<size_t>(n), 1e9, 0, 0, 0.5e9, 0});
  }
  m.link = link;
  m.shared_memory = {"shared-memory", 10, 4};
  m.allreduces_per_pass = 64;
  m.n_embd = 4096;
  return m;
}

}  // namespace

TEST(ThroughputModel, OneNodeDecodeIsBytesOverBandwidth) {
  const ClusterModel m = dense_cluster(1, std::nullopt);
  const Prediction p = predict(m, Algorithm::one_shot, WireFormat::f64, 1, 512);
  EXPECT_DOUBLE_EQ(p.decode_one.memory_s, 1e9 / 100e9);
  EXPECT_DOUBLE_EQ(p.decode_one.compute_s, 2 * 0.5e9 / 1000e9);
  EXPECT_EQ(p.decode_one.latency_s, 0);
  EXPECT_EQ(p.decode_one.limit(), Term::memory);
  // Memory 10 ms, compute 1 ms: the soft roofline adds (1 + 0.1^2.5)^(1/2.5), 0.13 %.
  EXPECT_NEAR(p.decode_tok_s, 100.0 / std::pow(1 + std::pow(0.1, 2.5), 0.4), 1e-9);
  EXPECT_GT(p.decode_tok_s, 99.8);
  // 512 tokens of a prompt read the weights once and multiply 512 times: compute limits.
  EXPECT_EQ(p.prefill.limit(), Term::compute);
  EXPECT_NEAR(p.prefill_tok_s, 512 / p.prefill.overlapped_s(), 1e-6);
  EXPECT_GT(p.prefill_tok_s, 0.99 * 512 / (512 * 2 * 0.5e9 / 1000e9));
  EXPECT_EQ(predict_all(m, 4, 512).size(), 1u);
}

TEST(ThroughputModel, AddingLatencyMovesTheLimitToTheLink) {
  const ClusterModel fast = dense_cluster(2, LinkSpeed{"fast", 1, 100});
  const ClusterModel slow = dense_cluster(2, LinkSpeed{"slow", 300, 100});
  const auto a = predict(fast, Algorithm::one_shot, WireFormat::f64, 1, 512);
  const auto b = predict(slow, Algorithm::one_shot, WireFormat::f64, 1, 512);
  EXPECT_EQ(a.decode_one.limit(), Term::memory);
  EXPECT_EQ(b.decode_one.limit(), Term::link_latency);
  // 64 all-reduces of one hop and 2 token exchanges, 300 us each.
  EXPECT_NEAR(b.decode_one.latency_s, 66 * 300e-6, 1e-12);
  EXPECT_LT(b.decode_tok_s, a.decode_tok_s);
  // Each node reads half the bytes of one node's whole model.
  EXPECT_DOUBLE_EQ(a.decode_one.memory_s, 1e9 / 100e9);
}

TEST(ThroughputModel, ThinLinkIsLimitedByItsBandwidthAndSmallerWireFormatsHelp) {
  const ClusterModel m = dense_cluster(2, LinkSpeed{"thin", 1, 0.01});
  const auto d = predict(m, Algorithm::one_shot, WireFormat::f64, 1, 512);
  const auto q = predict(m, Algorithm::one_shot, WireFormat::q8, 1, 512);
  EXPECT_EQ(d.decode_one.limit(), Term::link_bandwidth);
  EXPECT_NEAR(d.decode_one.bandwidth_s, 64 * 4096 * 8 / 0.01e9, 1e-9);
  EXPECT_GT(q.decode_tok_s, d.decode_tok_s);
}

TEST(ThroughputModel, AllreduceHopsAndBytes) {
  EXPECT_EQ(allreduce_cost(Algorithm::one_shot, 4, 100).hops, 1);
  EXPECT_EQ(allreduce_cost(Algorithm::one_shot, 4, 100).bytes_sent, 300);
  EXPECT_EQ(allreduce_cost(Algorithm::recursive_doubling, 4, 100).hops, 2);
  EXPECT_EQ(allreduce_cost(Algorithm::recursive_doubling, 3, 100).hops, 3);  // one more hop before and after
  EXPECT_EQ(allreduce_cost(Algorithm::ring, 4, 100).hops, 6);
  EXPECT_EQ(allreduce_cost(Algorithm::ring, 4, 100).bytes_sent, 150);
  EXPECT_EQ(allreduce_cost(Algorithm::ring, 1, 100).hops, 0);
}

TEST(ThroughputModel, RanksOnOneNodeShareItsBandwidth) {
  ClusterModel m = dense_cluster(1, std::nullopt);
  m.ranks.push_back({0, 1e9, 0, 0, 0.5e9, 0});
  const auto p = predict(m, Algorithm::one_shot, WireFormat::f64, 1, 512);
  EXPECT_DOUBLE_EQ(p.decode_one.memory_s, 2e9 / 100e9);
  EXPECT_NEAR(p.decode_one.latency_s, 66 * 10e-6, 1e-12);  // shared memory between the two ranks
}

TEST(ThroughputModel, ExpertsReadOnlyTheRoutedShareAndMoreWithMoreStreams) {
  ClusterModel m = dense_cluster(1, std::nullopt);
  m.ranks[0] = {0, 1e8, 8e9, 0.125, 0.05e9, 4e9};  // 8 GB of experts, 1 in 8 per token
  const auto one = pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false);
  EXPECT_DOUBLE_EQ(one.memory_s, (1e8 + 1e9) / 100e9);
  const auto four = pass_times(m, Algorithm::one_shot, WireFormat::f64, 4, false);
  EXPECT_GT(four.memory_s, one.memory_s);
  EXPECT_LT(four.memory_s, (1e8 + 4e9) / 100e9);  // tokens share experts
}

TEST(ThroughputModel, EachWeightTypeIsReadAtItsOwnStreamsRate) {
  ClusterModel m = dense_cluster(1, std::nullopt);
  m.ranks[0] = {0, 1e9, 8e9, 0.125, 0.5e9, 4e9};
  // A quarter of the dense bytes Q6_K, the rest Q4_0; the experts Q4_K; F32 norms measured by no probe.
  m.ranks[0].dense_bytes_of_type = {{"Q4_0", 0.74e9}, {"Q6_K", 0.25e9}, {"F32", 0.01e9}};
  m.ranks[0].expert_bytes_of_type = {{"Q4_K", 8e9}};
  const double as_q4_0 = pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).memory_s;
  EXPECT_DOUBLE_EQ(as_q4_0, (1e9 + 1e9) / 100e9);  // no ratios measured: every type as Q4_0
  m.nodes[0].stream_ratio = {{"Q6_K", 0.8}, {"Q4_K", 1.25}, {"Q8_0", 0.5}};
  const auto one = pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false);
  EXPECT_NEAR(one.memory_s, (0.75e9 + 0.25e9 / 0.8 + 1e9 / 1.25) / 100e9, 1e-15);
  // A prompt's pass reads every expert some token is routed to, each at its type's rate too.
  const auto prompt = pass_times(m, Algorithm::one_shot, WireFormat::f64, 512, true);
  EXPECT_NEAR(prompt.memory_s, (0.75e9 + 0.25e9 / 0.8 + 8e9 * (1 - std::pow(0.875, 512)) / 1.25) / 100e9, 1e-12);
}

// A node whose bandwidth is drawn from its Q4_0 decode stream: a decode pass of one type takes that
// type's bytes at its measured stream rate, the kernel's cost and the reads together (its compute
// counted as its stream bytes, not as its weights at Q4_0's flops), and a verify pass of 4 tokens
// multiplies 4 times what one token does.
TEST(ThroughputModel, ADecodePassOfAnyTypeTakesItsStreamsMeasuredTime) {
  const double stream_gbs = 30, flops_per_byte = 64.0 / 18, decode_gflops = 120;
  ClusterModel m = dense_cluster(1, std::nullopt);
  m.nodes[0].bandwidth_gbs = decode_bandwidth_gbs(stream_gbs, flops_per_byte, decode_gflops, 0);
  m.nodes[0].decode_gflops = decode_gflops;
  m.nodes[0].stream_flops_per_byte = flops_per_byte;
  m.nodes[0].stream_ratio = {{"Q6_K", 0.8}};
  // 1 GB of Q6_K: 1 G weights of 210 bytes a 256 (2.44 flops a byte against Q4_0's 3.56).
  m.ranks[0] = {0, 1e9, 0, 0, 1e9 * 256 / 210, 0};
  m.ranks[0].dense_bytes_of_type = {{"Q6_K", 1e9}};
  const auto one = pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false);
  EXPECT_NEAR(one.overlapped_s(), 1e9 / (0.8 * stream_gbs * 1e9), 1e-12);
  EXPECT_NEAR(one.compute_s, 1e9 / 0.8 * flops_per_byte / (decode_gflops * 1e9), 1e-15);
  const auto four = pass_times(m, Algorithm::one_shot, WireFormat::f64, 4, false);
  EXPECT_NEAR(four.compute_s, 4 * one.compute_s, 1e-15);
  EXPECT_DOUBLE_EQ(four.memory_s, one.memory_s);
  // Not drawn from a stream (a what-if node): each weight's 2 flops at the matrix-vector rate.
  m.nodes[0].stream_flops_per_byte = 0;
  EXPECT_NEAR(pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).compute_s,
              2 * 1e9 * 256 / 210 / (decode_gflops * 1e9), 1e-15);
}

TEST(ThroughputModel, NodesAndLinksAsWritten) {
  const auto g = parse_nodes("4x192GB@800GB/s");
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].count, 4);
  EXPECT_EQ(g[0].memory_bytes, 192000000000ull);
  EXPECT_DOUBLE_EQ(g[0].speed.bandwidth_gbs, 800);
  EXPECT_FALSE(g[0].compute_given);
  const auto h = parse_nodes("2x64GB@273GB/s@2TFLOPS+1x128GB@0.5TB/s");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_DOUBLE_EQ(h[0].speed.compute_gflops, 2000);
  EXPECT_DOUBLE_EQ(h[1].speed.bandwidth_gbs, 500);
  for (const char* bad : {"", "4x", "x64GB@1GB/s", "0x64GB@100GB/s", "4x64@", "4x64GB@fast", "4x64GB@100GB/s@lots",
                          "4xlotsGB@100GB/s", "65x1GB@1GB/s"})
    EXPECT_THROW(parse_nodes(bad), Error) << bad;
  EXPECT_EQ(parse_link("10gbe").name, "10gbe");
  const auto l = parse_link("300us,10gbit");
  EXPECT_DOUBLE_EQ(l.latency_us, 300);
  EXPECT_DOUBLE_EQ(l.bandwidth_gbs, 1.25);
  for (const char* bad : {"carrier-pigeon", "300us", "300,10gbit", "300us,fast", "300us,0gbit"})
    EXPECT_THROW(parse_link(bad), Error) << bad;
}

TEST(ThroughputModel, MemoryAndComputeOverlapSoftlyWhereTheyAreClose) {
  PassTimes t;
  t.memory_s = 0.010;
  t.compute_s = 0.010;
  EXPECT_NEAR(t.total(), 0.010 * std::pow(2.0, 0.4), 1e-12);  // equal: 1.32x either
  t.compute_s = 0.001;
  EXPECT_NEAR(t.total(), 0.010, 0.0001);  // one dominates: about it alone
  t.latency_s = 0.002;
  EXPECT_NEAR(t.total(), 0.012, 0.0001);  // the link adds
}

TEST(ThroughputModel, AnEmulatedLinkHoldsBackOnlyTheAllReduces) {
  ClusterModel m = dense_cluster(2, LinkSpeed{"emulated", 300, 100});
  m.step_link = LinkSpeed{"veth", 20, 1.5};
  const auto t = pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false);
  // 64 all-reduces of one hop at the emulated 300 us; the header and the token over veth.
  EXPECT_NEAR(t.latency_s, 64 * 300e-6 + 2 * 20e-6, 1e-12);
}

TEST(ThroughputModel, DecodeMultipliesAtTheMatrixVectorRate) {
  ClusterModel m = dense_cluster(1, std::nullopt);
  m.nodes[0].decode_gflops = 50;
  const auto p = predict(m, Algorithm::one_shot, WireFormat::f64, 1, 512);
  EXPECT_DOUBLE_EQ(p.decode_one.compute_s, 2 * 0.5e9 / 50e9);  // 20 ms: more than the 10 ms of memory
  EXPECT_EQ(p.decode_one.limit(), Term::compute);
  EXPECT_DOUBLE_EQ(p.prefill.compute_s, 512 * 2 * 0.5e9 / 1000e9);  // prompts: the tiles' rate
}

TEST(ThroughputModel, SpeculationSharesAPassAmongTheKeptDrafts) {
  const ClusterModel m = dense_cluster(2, LinkSpeed{"slow", 300, 100});
  const Prediction plain = predict(m, Algorithm::one_shot, WireFormat::f64, 1, 512);
  // --draft-max 0: no drafting, plain decoding.
  const auto none = predict_speculative(m, Algorithm::one_shot, WireFormat::f64, {0, 0, 0, 0, {}});
  EXPECT_EQ(none.k, 0);
  EXPECT_FALSE(none.probing());
  EXPECT_NEAR(none.tok_s, plain.decode_tok_s, 1e-9);
  // 90 % kept, free drafts: a pass over 9 tokens reads the weights once and costs the same round
  // trips, so k goes to the most and a round carries (1 - 0.9^9) / 0.1 tokens.
  const auto good = predict_speculative(m, Algorithm::one_shot, WireFormat::f64, {0.9, 0, 0, 8, {}});
  EXPECT_EQ(good.k, 8);
  EXPECT_NEAR(good.tokens_per_round, (1 - std::pow(0.9, 9)) / 0.1, 1e-9);
  EXPECT_NEAR(good.tok_s, good.tokens_per_round / good.verify.total(), 1e-9);
  EXPECT_GT(good.tok_s, 4 * plain.decode_tok_s);
  // A draft as slow as the model's pass: fewer drafts pay.
  const auto slow =
      predict_speculative(m, Algorithm::one_shot, WireFormat::f64, {0.9, plain.decode_one.total(), 0, 8, {}});
  EXPECT_LT(slow.k, 8);
  EXPECT_LT(slow.tok_s, good.tok_s);
  // The kept share bench reports, back to the per-token rate.
  const double share = 0.8 * (1 - std::pow(0.8, 8)) / (8 * 0.2);
  EXPECT_NEAR(acceptance_from_kept_share(share, 8), 0.8, 1e-6);
  EXPECT_DOUBLE_EQ(acceptance_from_kept_share(1, 8), 1);
  EXPECT_DOUBLE_EQ(acceptance_from_kept_share(0, 8), 0);
}

TEST(ThroughputModel, ARunPaysForTheRoundsBeforeKSettles) {
  // 90 % kept, free drafts, passes mostly round trips: k settles at 8, after rounds drafting 2, 0
  // (the plain pass) and 4. A run of 64 tokens emits 63 in its rounds: those three rounds carry
  // (1 + 0.9 + 0.81) + 1 + (1 - 0.9^5) / 0.1 tokens, the rest at the settled rate. Before, plan
  // counted every round at k = 8 (run = settled).
  const ClusterModel m = dense_cluster(2, LinkSpeed{"slow", 300, 100});
  const auto pass = [&m](int n) { return pass_times(m, Algorithm::one_shot, WireFormat::f64, n, false).total(); };
  Speculation s{0.9, 0, 0, 8, {}};
  s.tokens = 64;
  const auto p = predict_speculative(m, Algorithm::one_shot, WireFormat::f64, s);
  ASSERT_EQ(p.k, 8);
  EXPECT_EQ(p.opening, (std::vector<int>{2, 0, 4}));
  const double first = 2.71 + 1 + (1 - std::pow(0.9, 5)) / 0.1, rest = 63 - first;
  const double time_s = pass(3) + pass(1) + pass(5) + rest / p.tok_s;
  EXPECT_NEAR(p.run_tok_s, 63 / time_s, 1e-9 * p.run_tok_s);
  EXPECT_NEAR(p.run_tokens_per_round, 63 / (3 + rest / p.tokens_per_round), 1e-9);
  EXPECT_LT(p.run_tok_s, 0.9 * p.tok_s);  // a visible share of 64 tokens
  // A long run: the first rounds vanish in it; none asked (0): the settled figures.
  s.tokens = 1000000;
  EXPECT_NEAR(predict_speculative(m, Algorithm::one_shot, WireFormat::f64, s).run_tok_s, p.tok_s, 1e-3 * p.tok_s);
  s.tokens = 0;
  EXPECT_EQ(predict_speculative(m, Algorithm::one_shot, WireFormat::f64, s).run_tok_s, p.tok_s);
  // A run shorter than the first rounds: cut to its tokens as the engine cuts k to the budget
  // (2 tokens: one round drafting 0 of its 2).
  s.tokens = 2;
  EXPECT_NEAR(predict_speculative(m, Algorithm::one_shot, WireFormat::f64, s).run_tok_s, 1 / pass(1), 1e-9);
  // A draft as slow as the model's pass (k = 0): its one first round of 2 drafts still costs.
  const double one = pass(1);
  Speculation slow{0.999, one, 0, 8, {}};
  slow.tokens = 64;
  const auto q = predict_speculative(m, Algorithm::one_shot, WireFormat::f64, slow);
  EXPECT_EQ(q.k, 0);
  EXPECT_EQ(q.opening, std::vector<int>{2});
  EXPECT_LT(q.run_tok_s, q.tok_s);
}

TEST(ThroughputModel, AtKZeroTheEngineProbesOnlyADraftThatCouldPayAndAsRarelyAsItsRuleSays) {
  const ClusterModel one_rank = dense_cluster(1, std::nullopt);
  const double plain = predict(one_rank, Algorithm::one_shot, WireFormat::f64, 1, 512).decode_tok_s;
  const double one = pass_times(one_rank, Algorithm::one_shot, WireFormat::f64, 1, false).total();
  // A draft as costly as the model's pass, every draft kept: no k pays, and none would at any
  // acceptance rate, so the engine probes only to re-measure, rarely: plain decoding within 3 %.
  Speculation same{0.999, one, 0, 8, {}};
  same.draft_catch_up_s = [one](int n) { return 0.5 * one * n; };
  const auto p = predict_speculative(one_rank, Algorithm::one_shot, WireFormat::f64, same);
  EXPECT_EQ(p.k, 0);
  EXPECT_GE(p.probe_every, 256);
  EXPECT_LT(p.tok_s, plain);
  EXPECT_GT(p.tok_s, 0.97 * plain);
  // Two ranks over a slow link (a pass is mostly round trips), a cheap draft that is never right:
  // k = 0, but at a higher rate drafting would pay, so the engine probes; the probe's catch-up
  // (0.2 passes a token) decides how rarely: the rule's interval, and the cycle's mean speed.
  const ClusterModel two = dense_cluster(2, LinkSpeed{"slow", 300, 100});
  const double v1 = pass_times(two, Algorithm::one_shot, WireFormat::f64, 1, false).total();
  const double v2 = pass_times(two, Algorithm::one_shot, WireFormat::f64, 2, false).total();
  Speculation rare{0, 0.01 * v1, 0, 8, {}};
  rare.draft_catch_up_s = [v1](int n) { return 0.2 * v1 * n; };
  const auto q = predict_speculative(two, Algorithm::one_shot, WireFormat::f64, rare);
  EXPECT_EQ(q.k, 0);
  ASSERT_TRUE(q.probing());
  // Past kCatchUpMax rounds the catch-up is the restart's 33 tokens: (6.6 v1 + v2 - v1) / 0.03 v1.
  const int every = static_cast<int>(std::ceil((33 * 0.2 * v1 + v2 - v1) / (0.03 * v1)));
  EXPECT_EQ(q.probe_every, every);
  EXPECT_NEAR(q.tok_s, (every + 1.0) / (every * v1 + 33 * 0.2 * v1 + v2), 1e-9);
  EXPECT_GT(q.tok_s, 0.97 * predict(two, Algorithm::one_shot, WireFormat::f64, 1, 512).decode_tok_s);
  // Where drafting pays, no probe rounds: the chosen k's rounds.
  const auto free = predict_speculative(two, Algorithm::one_shot, WireFormat::f64, {0.9, 0, 0, 8, {}});
  EXPECT_FALSE(free.probing());
  EXPECT_GT(free.k, 0);
  // --draft-max 0: the engine never drafts, so never probes.
  const auto off = predict_speculative(one_rank, Algorithm::one_shot, WireFormat::f64, {0.9, one, 0, 0, {}});
  EXPECT_FALSE(off.probing());
  EXPECT_NEAR(off.tok_s, plain, 1e-9);
}

TEST(ThroughputModel, ManySmallMatmulsPayTheirPoolMeetingsBeyondOnePer4MiB) {
  // One rank reading 64 MiB of dense weights in 10 matmuls and 256 MiB of experts, 1 in 8 a token,
  // in 64 x 3 x 16 expert matrices (OLMoE's layout): a meeting costs 20 us.
  ClusterModel m = dense_cluster(1, std::nullopt);
  m.ranks[0].dense_bytes = 64.0 * (1 << 20), m.ranks[0].dense_matmuls = 10;
  m.ranks[0].expert_bytes = 256.0 * (1 << 20), m.ranks[0].expert_fraction = 1.0 / 8;
  m.ranks[0].expert_layers = 16, m.ranks[0].experts_per_layer = 64, m.ranks[0].n_expert_used = 8;
  const double before = pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).total();
  m.nodes[0].meeting_s = 20e-6;
  // A pool of one thread runs a token's experts one matmul at a time: 10 + 3072 / 8 = 394
  // matmuls, of which 96 MiB / 4 MiB = 24 met in the probe already.
  m.nodes[0].threads = 1;
  const PassTimes one = pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false);
  EXPECT_NEAR(one.meetings_s, (394 - 24) * 20e-6, 1e-12);
  EXPECT_NEAR(one.total(), before + one.meetings_s, 1e-12);
  // Several threads: one decode token's experts meet twice a layer (10 + 2 x 16 = 42 meetings),
  // as the engine chooses (model::experts_in_two_meetings); a batch of tokens still runs each
  // routed expert's matmuls, and shared experts add their three a layer.
  m.nodes[0].threads = 2;
  EXPECT_NEAR(pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).meetings_s, (42 - 24) * 20e-6, 1e-12);
  const double touched4 = 1 - std::pow(7.0 / 8, 4);
  const double bytes4 = 64.0 * (1 << 20) + 256.0 * (1 << 20) * touched4;
  EXPECT_NEAR(pass_times(m, Algorithm::one_shot, WireFormat::f64, 4, false).meetings_s,
              ((10 + 3072 * touched4) * 2 - bytes4 / (4 << 20)) * 20e-6, 1e-12);
  m.ranks[0].shared_experts = true;
  EXPECT_NEAR(pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).meetings_s, (42 - 24) * 20e-6, 1e-12);
  EXPECT_NEAR(pass_times(m, Algorithm::one_shot, WireFormat::f64, 4, false).meetings_s,
              ((10 + 3072 * touched4 + 3 * 16) * 2 - bytes4 / (4 << 20)) * 20e-6, 1e-12);
  m.ranks[0].shared_experts = false;
  // A prompt of 64 touches ~all experts, and each matmul also meets to quantise its tokens.
  const PassTimes prompt = pass_times(m, Algorithm::one_shot, WireFormat::f64, 64, true);
  const double touched = 1 - std::pow(7.0 / 8, 64);
  const double bytes = 64.0 * (1 << 20) + 256.0 * (1 << 20) * touched;
  EXPECT_NEAR(prompt.meetings_s, ((10 + 3072 * touched) * 2 - bytes / (4 << 20)) * 20e-6, 1e-12);
  // Big dense matrices: no more meetings than the probe paid, nothing added.
  ClusterModel dense = dense_cluster(1, std::nullopt);
  dense.nodes[0].meeting_s = 20e-6;
  dense.ranks[0].dense_matmuls = 100;  // 1 GB in 100 matrices: 10 MB each
  EXPECT_EQ(pass_times(dense, Algorithm::one_shot, WireFormat::f64, 1, false).meetings_s, 0);
}

TEST(ThroughputModel, APromptsSmallMatmulsPayWhatOneCostsBetweenRealTiles) {
  // OLMoE's layout as above; an empty meeting 1 us, a prompt's small matmul 12 us beyond its flops.
  ClusterModel m = dense_cluster(1, std::nullopt);
  m.ranks[0].dense_bytes = 64.0 * (1 << 20), m.ranks[0].dense_matmuls = 10;
  m.ranks[0].expert_bytes = 256.0 * (1 << 20), m.ranks[0].expert_fraction = 1.0 / 8;
  m.ranks[0].expert_layers = 16, m.ranks[0].experts_per_layer = 64, m.ranks[0].n_expert_used = 8;
  m.nodes[0].threads = 2, m.nodes[0].meeting_s = 1e-6;
  const PassTimes empty_meetings = pass_times(m, Algorithm::one_shot, WireFormat::f64, 64, true);
  m.nodes[0].prompt_meeting_s = 12e-6;
  // Each matmul once (its two meetings are in the figure), beyond one per 4 MiB the tiles' probes
  // paid: (10 + 3072 touched) matmuls less the bytes read over 4 MiB.
  const double touched = 1 - std::pow(7.0 / 8, 64);
  const double bytes = 64.0 * (1 << 20) + 256.0 * (1 << 20) * touched;
  const PassTimes prompt = pass_times(m, Algorithm::one_shot, WireFormat::f64, 64, true);
  EXPECT_NEAR(prompt.meetings_s, (10 + 3072 * touched - bytes / (4 << 20)) * 12e-6, 1e-12);
  EXPECT_NEAR(prompt.total(), empty_meetings.total() - empty_meetings.meetings_s + prompt.meetings_s, 1e-12);
  // A decode token's matmuls keep the empty meeting's cost (the decode stream's probe meets as they do).
  m.nodes[0].threads = 1;
  EXPECT_NEAR(pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).meetings_s, (394 - 24) * 1e-6, 1e-12);
  // Big dense matrices: no more matmuls than the probes paid, nothing added.
  ClusterModel dense = dense_cluster(1, std::nullopt);
  dense.nodes[0].prompt_meeting_s = 12e-6;
  dense.ranks[0].dense_matmuls = 100;  // 1 GB in 100 matrices: 10 MB each
  EXPECT_EQ(pass_times(dense, Algorithm::one_shot, WireFormat::f64, 64, true).meetings_s, 0);
}

TEST(ThroughputModel, SmallPromptTilesRunBetweenTheMatrixVectorAndTheTileRate) {
  NodeSpeed n{100, 1000, 100};
  EXPECT_DOUBLE_EQ(prompt_seconds_per_flop(n, 1), 1 / 100e9);
  EXPECT_NEAR(prompt_seconds_per_flop(n, 64), 1 / 1000e9, 1e-24);
  EXPECT_NEAR(prompt_seconds_per_flop(n, 512), 1 / 1000e9, 1e-24);  // no faster than measured
  const double eight = prompt_seconds_per_flop(n, 8);
  EXPECT_GT(eight, 1 / 1000e9 * 1.5);
  EXPECT_LT(eight, 1 / 100e9 / 2);
  n.decode_gflops = 0;  // not measured: the tile rate
  EXPECT_DOUBLE_EQ(prompt_seconds_per_flop(n, 8), 1 / 1000e9);
}

TEST(ThroughputModel, APromptOfAMixtureOfExpertsMultipliesInSmallTilesPerExpert) {
  ClusterModel dense = dense_cluster(1, std::nullopt);
  dense.nodes[0].decode_gflops = 100;
  ClusterModel moe = dense;
  // The same weights a token multiplies (0.5 G), but as 1 in 8 of 4 G expert weights.
  moe.ranks[0] = {0, 0, 8e9, 0.125, 0, 4e9};
  const auto d = pass_times(dense, Algorithm::one_shot, WireFormat::f64, 64, true);
  const auto e = pass_times(moe, Algorithm::one_shot, WireFormat::f64, 64, true);
  EXPECT_NEAR(d.compute_s, 64 * 2 * 0.5e9 / 1000e9, 1e-12);
  // ~8 tokens an expert: each expert's tile unpacks its weights for 8 tokens, not 64.
  const double per_expert = 64 * 0.125 / (1 - std::pow(0.875, 64));
  EXPECT_NEAR(e.compute_s, 64 * 2 * 0.5e9 * prompt_seconds_per_flop(moe.nodes[0], per_expert), 1e-12);
  EXPECT_GT(e.compute_s, 1.5 * d.compute_s);
  // Decode is unchanged: both multiply 0.5 G weights at the matrix-vector rate.
  EXPECT_DOUBLE_EQ(pass_times(moe, Algorithm::one_shot, WireFormat::f64, 1, false).compute_s,
                   pass_times(dense, Algorithm::one_shot, WireFormat::f64, 1, false).compute_s);
}

TEST(ThroughputModel, AMeasuredEightTokenTileIsWhatAnExpertOfEightTokensMultipliesAt) {
  // 1 token at 100 GFLOPS, 64 at 1000; measured at 8: 250 (slower than the 1-64 fit's ~457).
  NodeSpeed n{100, 1000, 100};
  const double fitted = prompt_seconds_per_flop(n, 8);
  n.tile8_gflops = 250;
  EXPECT_NEAR(prompt_seconds_per_flop(n, 8), 1 / 250e9, 1e-24);
  EXPECT_GT(prompt_seconds_per_flop(n, 8), 1.5 * fitted);
  // The measured points, and mul + unpack / b between them: continuous at 8.
  EXPECT_NEAR(prompt_seconds_per_flop(n, 1), 1 / 100e9, 1e-24);
  EXPECT_NEAR(prompt_seconds_per_flop(n, 64), 1 / 1000e9, 1e-24);
  EXPECT_NEAR(prompt_seconds_per_flop(n, 8 - 1e-9), prompt_seconds_per_flop(n, 8 + 1e-9), 1e-20);
  // Between 8 and 64: s(b) = mul + unpack / b through s(8) and s(64).
  const double unpack = (1 / 250e9 - 1 / 1000e9) / (1.0 / 8 - 1.0 / 64);
  EXPECT_NEAR(prompt_seconds_per_flop(n, 16), 1 / 1000e9 - unpack / 64 + unpack / 16, 1e-24);
  EXPECT_GT(prompt_seconds_per_flop(n, 4), prompt_seconds_per_flop(n, 8));
  EXPECT_LT(prompt_seconds_per_flop(n, 4), prompt_seconds_per_flop(n, 1));
}

TEST(ThroughputModel, TheDecodeStreamLessItsComputeIsTheMemorysBandwidth) {
  // Memory of 40 GB/s and 3.56 flops a byte at 200 GFLOPS: a pass of the stream's own shape.
  ClusterModel m = dense_cluster(1, std::nullopt);
  const double fpb = 64.0 / 18;
  m.nodes[0] = {40, 1000, 200};
  m.ranks[0].dense_bytes = 1e9, m.ranks[0].dense_params = 1e9 * fpb / 2;
  const double pass = pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).total();
  const double stream = 1e9 / pass / 1e9;  // what doctor's stream would measure, GB/s
  EXPECT_LT(stream, 40);
  EXPECT_NEAR(decode_bandwidth_gbs(stream, fpb, 200, 0), 40, 1e-9);
  EXPECT_NEAR(decode_bandwidth_gbs(stream, fpb, 200, 100), 40, 1e-9);
  // Plain reads slower than the memory the kernels see (they prefetch) bound nothing: the
  // stream's own shape stays at the stream's rate. No stream measured: the reads.
  EXPECT_NEAR(decode_bandwidth_gbs(stream, fpb, 200, 35), 40, 1e-9);
  EXPECT_DOUBLE_EQ(decode_bandwidth_gbs(0, fpb, 200, 35), 35);
  // Compute as slow as the whole stream (in cache no faster than from memory): the memory's
  // share cannot be told apart, and the reads stand.
  EXPECT_DOUBLE_EQ(decode_bandwidth_gbs(stream, fpb, stream * fpb, 35), 35);
  EXPECT_DOUBLE_EQ(decode_bandwidth_gbs(stream, fpb, stream * fpb * 0.9, 35), 35);
  // No compute figure: the stream is all memory.
  EXPECT_NEAR(decode_bandwidth_gbs(stream, fpb, 0, 0), stream, 1e-9);
}

TEST(ThroughputModel, ALinkFromMeasuredAllReducesGivesTheirTimeBack) {
  // 3 ranks, 16 KiB in 100 us and 64 KiB in 160 us: each rank sends 2 copies.
  const LinkSpeed l = link_from_allreduces(16384, 100, 65536, 160, 3);
  EXPECT_NEAR(l.bandwidth_gbs, 2 * 49152 / 60.0 / 1e3, 1e-9);
  EXPECT_NEAR(l.latency_us + 2 * 16384 / (l.bandwidth_gbs * 1e3), 100, 1e-9);
  EXPECT_NEAR(l.latency_us + 2 * 65536 / (l.bandwidth_gbs * 1e3), 160, 1e-9);
  // A slope that says the link is slower than the small message's bytes over half its time (or
  // no slope at all): that floor, and the latency the other half.
  const LinkSpeed slow = link_from_allreduces(16384, 100, 65536, 5000, 3);
  EXPECT_NEAR(slow.bandwidth_gbs, 2 * 16384 / 50.0 / 1e3, 1e-9);
  EXPECT_NEAR(slow.latency_us, 50, 1e-9);
  EXPECT_NEAR(link_from_allreduces(16384, 100, 65536, 90, 3).latency_us, 50, 1e-9);
}

TEST(ThroughputModel, ThreadsOutnumberingTheCoresTakeTurnsOnThem) {
  // Between two all-reduces a core runs its ranks' work one after another: 3 one-thread ranks on 2
  // cores wait for the one that had to share (3/2 of a core's work on each, 2 on one: 0.75); 4 on 2
  // share them evenly; a thread for each core or fewer, or cores not known: the whole rate.
  EXPECT_DOUBLE_EQ(core_share(3, 2), 0.75);
  EXPECT_DOUBLE_EQ(core_share(4, 2), 1.0);
  EXPECT_DOUBLE_EQ(core_share(5, 2), 2.5 / 3);
  EXPECT_DOUBLE_EQ(core_share(2, 2), 1.0);
  EXPECT_DOUBLE_EQ(core_share(1, 2), 1.0);
  EXPECT_DOUBLE_EQ(core_share(3, 0), 1.0);
  // A node's memory and compute take 1 / share as long, each its own; the link's terms do not change.
  ClusterModel m = dense_cluster(1, std::nullopt);
  m.ranks.push_back(m.ranks[0]);
  const PassTimes whole = pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false);
  m.nodes[0].core_share = core_share(3, 2);
  const PassTimes shared = pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false);
  EXPECT_NEAR(shared.memory_s, whole.memory_s / 0.75, 1e-12);
  EXPECT_NEAR(shared.compute_s, whole.compute_s / 0.75, 1e-12);
  EXPECT_DOUBLE_EQ(shared.latency_s, whole.latency_s);
  EXPECT_DOUBLE_EQ(shared.bandwidth_s, whole.bandwidth_s);
}

TEST(ThroughputModel, AHandoverGrowsAlongTheProbesTwoPointsWithTheThreadsBeyondTheCores) {
  // The probe's points on 4 cores: 50 us a synchronisation with 1 thread beyond them, 200 with 4.
  NodeSpeed n{100, 1000};
  n.cores = 4;
  n.handover_s[0] = 50e-6;
  n.handover_s[1] = 200e-6;
  EXPECT_EQ(handover_per_sync_s(n), 0);  // each thread has a core
  n.threads_beyond_cores = 1;
  EXPECT_NEAR(handover_per_sync_s(n), 50e-6, 1e-15);
  n.threads_beyond_cores = 2;
  EXPECT_NEAR(handover_per_sync_s(n), 100e-6, 1e-15);
  n.threads_beyond_cores = 4;
  EXPECT_NEAR(handover_per_sync_s(n), 200e-6, 1e-15);
  n.threads_beyond_cores = 7;  // past the second point, straight on
  EXPECT_NEAR(handover_per_sync_s(n), 350e-6, 1e-15);
  // A second point below the first goes down, never below 0.
  n.handover_s[1] = 10e-6;
  EXPECT_EQ(handover_per_sync_s(n), 0);
  // One core: the probe's one sample, per thread beyond it.
  n.cores = 1;
  n.handover_s[1] = 0;
  n.threads_beyond_cores = 3;
  EXPECT_NEAR(handover_per_sync_s(n), 150e-6, 1e-15);
  n.threads_beyond_cores = -1;
  EXPECT_EQ(handover_per_sync_s(n), 0);
}

TEST(ThroughputModel, RanksBeyondTheCoresPayAHandoverAtEachSynchronisation) {
  // 4 one-thread ranks on 2 cores (2 beyond them: 200 us a synchronisation as the probe's second
  // point), over shared memory (10 us a hop): a decode pass's 64 all-reduces and 2 next-step
  // exchanges pay 200 us less the 10 us each waits on the link anyway; a prompt's pass has no
  // exchanges.
  ClusterModel m = dense_cluster(1, std::nullopt);
  for (int r = 1; r < 4; ++r) m.ranks.push_back(m.ranks[0]);
  const PassTimes fit = pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false);
  const PassTimes fit_prompt = pass_times(m, Algorithm::one_shot, WireFormat::f64, 64, true);
  m.nodes[0].cores = 2;
  m.nodes[0].handover_s[0] = 60e-6;
  m.nodes[0].handover_s[1] = 200e-6;
  // Threads that each have a core pay nothing, whatever the figures.
  EXPECT_EQ(pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).handover_s, 0);
  m.nodes[0].threads_beyond_cores = 2;
  const PassTimes decode = pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false);
  EXPECT_NEAR(decode.handover_s, (64 + 2) * (200e-6 - 10e-6), 1e-12);
  EXPECT_NEAR(decode.total(), fit.total() + decode.handover_s, 1e-12);
  EXPECT_DOUBLE_EQ(decode.memory_s, fit.memory_s);
  EXPECT_DOUBLE_EQ(decode.latency_s, fit.latency_s);
  const PassTimes prompt = pass_times(m, Algorithm::one_shot, WireFormat::f64, 64, true);
  EXPECT_NEAR(prompt.handover_s, 64 * 190e-6, 1e-12);
  EXPECT_NEAR(prompt.total(), fit_prompt.total() + prompt.handover_s, 1e-12);
  // Ring all-reduces wait 2 (N - 1) hops of the link: 6 x 10 us of each 200 us hidden.
  EXPECT_NEAR(pass_times(m, Algorithm::ring, WireFormat::f64, 1, false).handover_s, 64 * 140e-6 + 2 * 190e-6, 1e-12);
  // One thread beyond the cores: the first point.
  m.nodes[0].threads_beyond_cores = 1;
  EXPECT_NEAR(pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).handover_s, 66 * 50e-6, 1e-12);
  // A link slower than the handover hides it (the ranks sleep to the link's moment); the step's
  // exchanges over the transport itself still pay it.
  m.nodes[0].threads_beyond_cores = 2;
  m.link = LinkSpeed{"emulated", 300, 1.25};
  m.step_link = LinkSpeed{"shared-memory", 10, 4};
  EXPECT_NEAR(pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).handover_s, 2 * 190e-6, 1e-12);
  // Where it is the largest term, plan names it.
  m.link.reset();
  m.step_link.reset();
  m.nodes[0].handover_s[1] = 10e-3;
  const PassTimes slow = pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false);
  EXPECT_EQ(slow.limit(), Term::handover);
  EXPECT_STREQ(term_name(slow.limit()), "core handover");
}

TEST(ThroughputModel, TheHandoverOfTheMachineWhereItCostsMostHoldsEveryRankBack) {
  // Two machines: one whose ranks fit its cores, one with 3 threads beyond its 1 core; every rank
  // waits at each all-reduce for the slowest machine's handover.
  ClusterModel m = dense_cluster(2, LinkSpeed{"fast", 0, 100});
  m.nodes[0].handover_s[0] = 1e-3;  // measured, but its ranks fit its cores
  m.nodes[1].cores = 1;
  m.nodes[1].threads_beyond_cores = 3;
  m.nodes[1].handover_s[0] = 50e-6;
  m.exchanges_per_step = 0;
  EXPECT_NEAR(pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).handover_s, 64 * 150e-6, 1e-12);
  m.nodes[0].threads_beyond_cores = 1;
  EXPECT_NEAR(pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).handover_s, 64 * 1e-3, 1e-12);
  // One rank synchronises with nobody.
  m.ranks.pop_back();
  EXPECT_EQ(pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).handover_s, 0);
}

TEST(ThroughputModel, EveryTurnRunsAtTheRateOfAllTheCoresBusy) {
  // 5 on 2: three turns on the busiest core, 2.5 cores' work in them; 7 on 4: two turns, 1.75 in
  // them; 8 on 4 fill both turns. A last turn's threads get no faster rate than a full turn's
  // (they interleave with the turn before: the header's measurement).
  EXPECT_DOUBLE_EQ(core_share(5, 2), 2.5 / 3);
  EXPECT_DOUBLE_EQ(core_share(7, 4), 7.0 / 8);
  EXPECT_DOUBLE_EQ(core_share(8, 4), 1.0);
  EXPECT_DOUBLE_EQ(core_share(9, 4), 9.0 / 12);
}

TEST(ThroughputModel, APromptsRowParallelMatmulsPayAFoldPerChunkOfEachRow) {
  // Measured: 1.30 x the plain tiles' time a flop summing in chunks of 64 columns, 1.05 at 512;
  // the time a flop is A + B / chunk through both.
  NodeSpeed n{100, 1000, 100};
  EXPECT_EQ(row_parallel_s(n, true, 1e9, 1e9 / 64), 0);  // not measured
  n.row_parallel_chunks[0] = 64, n.row_parallel_chunks[1] = 512;
  n.row_parallel_slowdown[0] = 1.30, n.row_parallel_slowdown[1] = 1.05;
  EXPECT_NEAR(row_parallel_s(n, true, 1e9, 1e9 / 64), 0.30 * 1e9 / 1000e9, 1e-15);
  EXPECT_NEAR(row_parallel_s(n, true, 1e9, 1e9 / 512), 0.05 * 1e9 / 1000e9, 1e-15);
  const double b = 0.25 / (1.0 / 64 - 1.0 / 512), a = 0.05 - b / 512;
  EXPECT_NEAR(row_parallel_s(n, true, 1e9, 1e9 / 128), (a + b / 128) * 1e9 / 1000e9, 1e-15);
  // Matrices of two widths add up: half the flops at 64, half at 512.
  EXPECT_NEAR(row_parallel_s(n, true, 1e9, 0.5e9 / 64 + 0.5e9 / 512), (0.15 + 0.025) * 1e9 / 1000e9, 1e-15);
  // A prompt pass adds it for the rank's row-parallel weights, routed experts at their share; a
  // decode pass by the matrix-vector kernels' own figures, none from a record without them.
  ClusterModel m = dense_cluster(1, std::nullopt);
  const double plain = pass_times(m, Algorithm::one_shot, WireFormat::f64, 64, true).compute_s;
  m.nodes[0].row_parallel_chunks[0] = 64, m.nodes[0].row_parallel_chunks[1] = 512;
  m.nodes[0].row_parallel_slowdown[0] = 1.30, m.nodes[0].row_parallel_slowdown[1] = 1.05;
  m.ranks[0].row_parallel_dense_params = 0.2e9, m.ranks[0].row_parallel_dense_per_chunk = 0.2e9 / 512;
  m.ranks[0].expert_fraction = 0.125, m.ranks[0].row_parallel_expert_params = 0.8e9;
  m.ranks[0].row_parallel_expert_per_chunk = 0.8e9 / 64;
  const double flops_at_512 = 2 * 64 * 0.2e9, flops_at_64 = 2 * 64 * 0.125 * 0.8e9;
  EXPECT_NEAR(pass_times(m, Algorithm::one_shot, WireFormat::f64, 64, true).compute_s - plain,
              (0.05 * flops_at_512 + 0.30 * flops_at_64) / 1000e9, 1e-12);
  const double decode_plain =
      pass_times(dense_cluster(1, std::nullopt), Algorithm::one_shot, WireFormat::f64, 1, false).compute_s;
  EXPECT_DOUBLE_EQ(pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).compute_s, decode_plain);
}

TEST(ThroughputModel, ADecodesRowParallelMatmulsPayTheMatrixVectorKernelsFolds) {
  // The decode kernels' ratios (1.28 at 64 columns a chunk, 1.07 at 512: one thread of this
  // project's VM in cache), at the decode rate, for each token of the pass.
  NodeSpeed n{100, 1000, 100};
  n.row_parallel_chunks[0] = 64, n.row_parallel_chunks[1] = 512;
  n.row_parallel_slowdown[0] = 1.30, n.row_parallel_slowdown[1] = 1.05;
  EXPECT_EQ(row_parallel_s(n, false, 1e9, 1e9 / 64), 0);  // a record without them
  n.row_parallel_decode_slowdown[0] = 1.28, n.row_parallel_decode_slowdown[1] = 1.07;
  EXPECT_NEAR(row_parallel_s(n, false, 1e9, 1e9 / 64), 0.28 * 1e9 / 100e9, 1e-15);
  EXPECT_NEAR(row_parallel_s(n, false, 1e9, 1e9 / 512), 0.07 * 1e9 / 100e9, 1e-15);
  n.decode_gflops = 0;  // not measured: the tiles' rate
  EXPECT_NEAR(row_parallel_s(n, false, 1e9, 1e9 / 64), 0.28 * 1e9 / 1000e9, 1e-15);

  ClusterModel m = dense_cluster(1, std::nullopt);
  const double plain[2] = {pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).compute_s,
                           pass_times(m, Algorithm::one_shot, WireFormat::f64, 3, false).compute_s};
  NodeSpeed& node = m.nodes[0];
  node.row_parallel_chunks[0] = 64, node.row_parallel_chunks[1] = 512;
  node.row_parallel_decode_slowdown[0] = 1.28, node.row_parallel_decode_slowdown[1] = 1.07;
  m.ranks[0].row_parallel_dense_params = 0.2e9, m.ranks[0].row_parallel_dense_per_chunk = 0.2e9 / 512;
  m.ranks[0].expert_fraction = 0.125, m.ranks[0].row_parallel_expert_params = 0.8e9;
  m.ranks[0].row_parallel_expert_per_chunk = 0.8e9 / 64;
  const double gflops = node.decode_gflops > 0 ? node.decode_gflops : node.compute_gflops;
  for (int tokens : {1, 3}) {
    const double at_512 = 2 * tokens * 0.2e9, at_64 = 2 * tokens * 0.125 * 0.8e9;
    EXPECT_NEAR(pass_times(m, Algorithm::one_shot, WireFormat::f64, tokens, false).compute_s - plain[tokens / 2],
                (0.07 * at_512 + 0.28 * at_64) / (gflops * 1e9), 1e-12)
        << tokens << " tokens";
  }
}

TEST(ThroughputModel, APromptsPiecesHideTheirAllReducesBehindTheNextPiecesMatmul) {
  // Two nodes of 1000 GFLOPS over 300 us / 10 Gbit; each rank's 32 attention output projections of
  // 8 M weights and 32 dense FFN down projections of 28 M.
  ClusterModel m = dense_cluster(2, LinkSpeed{"300us,10gbit", 300, 1.25});
  for (RankWork& r : m.ranks) {
    r.overlap_attention_params = 32 * 8e6, r.overlap_attention_allreduces = 32;
    r.overlap_ffn_params = 32 * 28e6, r.overlap_ffn_allreduces = 32;
  }
  // 512 tokens in 8 pieces of 64: an all-reduce of the whole prompt (16 MiB of doubles, one-shot
  // on 2 ranks) against one piece's.
  const double whole = 300e-6 + 512 * 4096 * 8 / 1.25e9, piece = 300e-6 + 64 * 4096 * 8 / 1.25e9;
  // A piece's attention output matmul (1.0 ms) is shorter than its all-reduce (2.0 ms): each piece
  // but the first leaves the difference exposed; its FFN down (3.6 ms) hides the next piece's whole.
  const double attention_matmul = 2 * 64 * 8e6 / 1000e9, ffn_matmul = 2 * 64 * 28e6 / 1000e9;
  ASSERT_LT(attention_matmul, piece);
  ASSERT_GT(ffn_matmul, piece);
  const double hidden = 32 * (whole - (8 * piece - 7 * attention_matmul)) + 32 * (whole - piece);
  const PassTimes on = pass_times(m, Algorithm::one_shot, WireFormat::f64, 512, true);
  EXPECT_NEAR(on.overlap_hidden_s, hidden, 1e-12);
  m.prompt_overlap = false;
  const PassTimes off = pass_times(m, Algorithm::one_shot, WireFormat::f64, 512, true);
  EXPECT_EQ(off.overlap_hidden_s, 0);
  EXPECT_NEAR(off.total() - on.total(), hidden, 1e-12);
  m.prompt_overlap = true;
  // A prompt of fewer than two pieces and a decode pass run in one piece.
  EXPECT_EQ(pass_times(m, Algorithm::one_shot, WireFormat::f64, 127, true).overlap_hidden_s, 0);
  EXPECT_EQ(pass_times(m, Algorithm::one_shot, WireFormat::f64, 1, false).overlap_hidden_s, 0);
  // Each piece's attention runs before its output projection: 0.64 s of a pass's attention over
  // 32 layers and 8 pieces adds 2.5 ms to each piece's work, past its all-reduce, which hides too.
  EXPECT_NEAR(prompt_overlap_hidden_s(m, Algorithm::one_shot, *m.link, 512 * 4096 * 8, 512, 0.64), 64 * (whole - piece),
              1e-12);
  // Where the link's latency dominates, the pieces' extra latencies cost more than they hide.
  m.link = LinkSpeed{"2ms,100gbit", 2000, 12.5};
  EXPECT_LT(pass_times(m, Algorithm::one_shot, WireFormat::f64, 512, true).overlap_hidden_s, 0);
  // One rank has no all-reduce.
  EXPECT_EQ(
      pass_times(dense_cluster(1, std::nullopt), Algorithm::one_shot, WireFormat::f64, 512, true).overlap_hidden_s, 0);
}
