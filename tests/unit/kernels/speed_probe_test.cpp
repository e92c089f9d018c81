// doctor's decode stream (worker/tools/speed_probe.h): what it reads and how it meets the pool.
// No speed of this machine is asserted: only that the stream is the shape the planner assumes.
#include "worker/tools/speed_probe.h"

#include <gtest/gtest.h>

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
