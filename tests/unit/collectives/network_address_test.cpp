// The one IPv4 helper the tcp transport and the heartbeat share: which networks and interface
// names it takes, that a malformed network is refused with one message (never read as "no
// match"), and that both callers refuse alike.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include "collectives/error.h"
#include "collectives/network_address.h"
#include "collectives/tcp/tcp_transport.h"

namespace clusterctl::collectives {
namespace {

uint32_t ip(const char* text) {
  in_addr a{};
  inet_pton(AF_INET, text, &a);
  return a.s_addr;
}

TEST(NetworkAddress, ParsesNetworksAndAddresses) {
  auto n = parse_ipv4_network("10.77.2.0/24");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->prefix, 24);
  EXPECT_TRUE(n->contains(ip("10.77.2.9")));
  EXPECT_FALSE(n->contains(ip("10.77.3.9")));
  EXPECT_TRUE(parse_ipv4_network("0.0.0.0/0")->contains(ip("192.168.1.1")));
  EXPECT_EQ(parse_ipv4_network("10.0.0.7")->prefix, 32);
  for (const char* bad : {"10.77.2.0/33", "10.77.2/24", "10.77.2.0/", "10.77.2.0/x", "10.77.2.0/-1", "300.1.1.1/8"})
    EXPECT_FALSE(parse_ipv4_network(bad)) << bad;
  EXPECT_EQ(ipv4_text(ip("10.77.2.1")), "10.77.2.1");
}

TEST(NetworkAddress, ASpecIsNetworksOrInterfaceNames) {
  EXPECT_EQ(interface_spec_error("10.77.2.0/24"), "");
  EXPECT_EQ(interface_spec_error("tb0, 10.0.0.0/8"), "");
  EXPECT_NE(interface_spec_error("10.77.2.0/33").find("'10.77.2.0/33' is not an IPv4 network like 10.0.0.0/24"),
            std::string::npos);
  EXPECT_NE(interface_spec_error(" , ").find("names no network"), std::string::npos);
}

TEST(NetworkAddress, MatchesInTheSpecsOrderAndOnlyUpInterfaces) {
  const std::vector<LocalAddress> have = {
      {"lo", ip("127.0.0.1"), true}, {"eth0", ip("10.0.0.2"), true}, {"tb0", ip("10.77.2.1"), false}};
  EXPECT_EQ(address_matching("10.77.2.0/24,eth0", have, "x"), "10.0.0.2");  // tb0 is down
  EXPECT_EQ(address_matching("lo,eth0", have, "x"), "127.0.0.1");
  EXPECT_EQ(address_matching("10.0.0.0/8", have, "x"), "10.0.0.2");
  EXPECT_EQ(address_matching("wlan0", have, "x"), "");
  EXPECT_EQ(describe_addresses(have), "lo 127.0.0.1, eth0 10.0.0.2");
  try {
    address_matching("10.0.0.0/40", have, "--tcp-interface");
    FAIL() << "a /40 network was taken";
  } catch (const CollectiveError& e) {
    EXPECT_NE(std::string(e.what()).find("--tcp-interface: '10.0.0.0/40' is not an IPv4 network"), std::string::npos)
        << e.what();
  }
}

// The tcp transport refuses a malformed network instead of reading it as no match, and names the
// addresses it has when a good one matches none.
TEST(NetworkAddress, TcpListenAddressRefusesAlike) {
  EXPECT_EQ(tcp_listen_address("127.0.0.0/8", "h").ip, "127.0.0.1");
  EXPECT_EQ(tcp_listen_address("lo", "h").source, "--tcp-interface lo");
  try {
    tcp_listen_address("127.0.0.0/99", "h");
    FAIL() << "a /99 network was taken";
  } catch (const CollectiveError& e) {
    EXPECT_NE(std::string(e.what()).find("'127.0.0.0/99' is not an IPv4 network"), std::string::npos) << e.what();
  }
  // A documentation network this host has no address in.
  std::string absent;
  for (const char* net : {"198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24"}) {
    bool here = false;
    for (const auto& a : local_ipv4_addresses()) here = here || parse_ipv4_network(net)->contains(a.address);
    if (!here) absent = net;
  }
  ASSERT_FALSE(absent.empty());
  try {
    tcp_listen_address(absent, "h");
    FAIL() << absent << " matched";
  } catch (const CollectiveError& e) {
    EXPECT_NE(std::string(e.what()).find("matches none of this host's IPv4 addresses ("), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("lo 127.0.0.1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace clusterctl::collectives
