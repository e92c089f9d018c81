// doctor's decode stream (worker/tools/speed_probe.h): what it reads and how it meets the pool.
// No speed of this machine is asserted: only that the stream is the shape the planner assumes.
#include "worker/tools/speed_probe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "worker/tools/handover_probe.h"

using namespace clusterctl;

TEST(DecodeStream, ReadsQ4_0MatricesOfAbout4MiBMeetingAfterEach) {
  kernels::ThreadPool pool(2);
  tools::DecodeStream stream(pool, size_t(20) << 20);
  // Whole matrices of ~4 MiB: 5 of them fit 20 MiB.
  const double matrices = static_cast<double>(stream.bytes()) / (4 << 20);
  EXPECT_GE(stream.bytes(), size_t(16) << 20);
  EXPECT_LE(stream.bytes(), size_t(20) << 20);
  // Q4_0: 2 flops for each of 32 weights in 18 bytes, as the planner's inversion takes it.
  EXPECT_NEAR(stream.flops() / static_cast<double>(stream.bytes()), 64.0 / 18, 0.01);
  EXPECT_NEAR(tools::decode_stream_flops_per_byte(), 64.0 / 18, 0.01);
  int met = 0;
  stream.pass([&] { ++met; });
  EXPECT_NEAR(met, matrices, 1.0);
  const tools::BandwidthSample s = tools::measure_decode_stream(pool, size_t(8) << 20, 3);
  EXPECT_EQ(s.threads, 2);
  EXPECT_EQ(s.reps, 3);
  EXPECT_GT(s.min_gbs, 0);
  EXPECT_LE(s.min_gbs, s.median_gbs);
  EXPECT_LE(s.median_gbs, s.max_gbs);
  // Ranks together: every rank's bytes over the slowest rank's time.
  const tools::BandwidthSample r = tools::measure_ranks_decode_stream(2, 1, size_t(16) << 20, 2);
  EXPECT_GT(r.median_gbs, 0);
}

// A ranks' figure below one rank's alone was disturbed: measured again (twice at most), the best kept;
// one at or above it is kept as it is, measured once.
TEST(RanksTogether, AFigureBelowOneRanksAloneIsMeasuredAgain) {
  std::vector<double> readings = {10.3, 36.7, 99};
  size_t calls = 0;
  auto next = [&] { return readings[calls++]; };
  EXPECT_EQ(tools::at_least_one_ranks(27.9, next), 36.7);
  EXPECT_EQ(calls, 2u);
  calls = 0, readings = {5, 7, 6, 99};
  EXPECT_EQ(tools::at_least_one_ranks(27.9, next), 7);
  EXPECT_EQ(calls, 3u);
  calls = 0, readings = {30, 99};
  EXPECT_EQ(tools::at_least_one_ranks(27.9, next), 30);
  EXPECT_EQ(calls, 1u);
}

// doctor's core handover (worker/tools/handover_probe.h): ranks beyond the cores exchanging with
// test-and-sleep waits. Any machine's figures are finite times of at least 0 (0 where a scheduler
// sharing a core finely beat the turns: CI's 2 cores under ctest -j measured 0 three probes
// running); its samples are the machine's cores + 1 and 2 x cores ranks, each step at least a
// chunk long.
TEST(HandoverProbe, RanksBeyondTheCoresGiveAFiniteCostPerMeeting) {
  const tools::HandoverProbe p = tools::measure_handover(2, 3, 100, 200);
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].ranks, 3);
  EXPECT_EQ(p.samples[1].ranks, 4);
  EXPECT_GT(p.chunk_us, 0);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(std::isfinite(p.handover_us[i]));
    EXPECT_GE(p.handover_us[i], 0);
  }
  for (const auto& s : p.samples) {
    EXPECT_GT(s.step_us, p.chunk_us);
    EXPECT_DOUBLE_EQ(s.turns_us, 2 * p.chunk_us);  // ceil(3 / 2) = ceil(4 / 2) = 2 chunks in turns
    EXPECT_NEAR(s.handover_us, std::max(s.step_us - s.turns_us, 0.0), 1e-9);
  }
  EXPECT_EQ(p.handover_us[0], p.samples[0].handover_us);
  EXPECT_EQ(p.handover_us[1], p.samples[1].handover_us);
  // One core: 2 ranks are both its cores + 1 and 2 x its cores, one sample.
  const tools::HandoverProbe one = tools::measure_handover(1, 1, 20, 100);
  EXPECT_EQ(one.samples.size(), 1u);
  EXPECT_EQ(one.handover_us[0], one.handover_us[1]);
}
