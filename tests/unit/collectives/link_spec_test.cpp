// --emulate-link's text: what it accepts, and one clear message for each mistake.
#include <gtest/gtest.h>

#include "collectives/algorithms/allreduce.h"
#include "collectives/algorithms/emulated_link.h"
#include "collectives/error.h"

namespace clusterctl::collectives {
namespace {

TEST(LinkSpec, ParsesLatencyBandwidthJitter) {
  const auto s = parse_link_spec("latency=300us,bandwidth=10gbit,jitter=20us");
  EXPECT_DOUBLE_EQ(s.latency_s, 300e-6);
  EXPECT_DOUBLE_EQ(s.bandwidth_bytes_per_s, 1.25e9);
  EXPECT_DOUBLE_EQ(s.jitter_s, 20e-6);
  EXPECT_NE(describe(s).find("emulated"), std::string::npos);
  EXPECT_DOUBLE_EQ(parse_link_spec("bandwidth=100mbyte,latency=1.5ms").latency_s, 1.5e-3);
}

void expect_refused(const std::string& text, const std::string& says) {
  try {
    parse_link_spec(text);
    ADD_FAILURE() << text << " was accepted";
  } catch (const CollectiveError& e) {
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("latency=300us,bandwidth=10gbit"), std::string::npos) << e.what();
  }
}

TEST(LinkSpec, RefusesMistakesNamingThem) {
  expect_refused("latency=300", "needs a unit");
  expect_refused("latency=300us", "both latency and bandwidth");
  expect_refused("latency=300us,bandwidth=10gbps", "needs a unit");
  expect_refused("latency=300us,bandwidth=0gbit", "above 0");
  expect_refused("latency=300us,bandwidth=1gbit,loss=1", "unknown key 'loss'");
  expect_refused("latency=x,bandwidth=1gbit", "does not start with a number");
  expect_refused("300us", "not KEY=VALUE");
  expect_refused("latency=20s,bandwidth=1gbit", "over 10 s");
  expect_refused("", "not KEY=VALUE");
}

TEST(SelectionTable, ParsesAndRefuses) {
  const auto s = Selection::parse("# c\n2 65536 one-shot tcp\n2 max ring\n3 4096 mpi\n", "t");
  EXPECT_EQ(s.choose(2, 1000, WireFormat::kDouble).algorithm, Algorithm::kOneShot);
  EXPECT_EQ(s.choose(2, 1000, WireFormat::kDouble).transport, TransportKind::kTcp);
  EXPECT_EQ(s.choose(2, 1 << 20, WireFormat::kDouble).algorithm, Algorithm::kRing);
  EXPECT_EQ(s.choose(2, 1 << 20, WireFormat::kDouble).transport, TransportKind::kMpi);  // no transport: mpi
  EXPECT_EQ(s.choose(3, 100, WireFormat::kDouble).algorithm, Algorithm::kMpi);
  EXPECT_NE(s.choose(3, 100, WireFormat::kBf16).algorithm, Algorithm::kMpi);  // mpi carries only double
  EXPECT_TRUE(s.uses(2, TransportKind::kTcp));
  EXPECT_FALSE(s.uses(3, TransportKind::kTcp));
  EXPECT_EQ(Selection::parse(s.to_text(), "t").to_text(), s.to_text());
  for (const char* bad : {"2 10 teleport\n", "1 10 ring\n", "2 -5 ring\n", "2 10\n", "2 10 ring tcp extra\n",
                          "2 10 ring udp\n", "2 10 mpi tcp\n"}) {
    try {
      Selection::parse(bad, "table");
      ADD_FAILURE() << bad << " accepted";
    } catch (const CollectiveError& e) {
      EXPECT_NE(std::string(e.what()).find("table:1:"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace clusterctl::collectives
