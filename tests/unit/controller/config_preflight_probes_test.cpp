// What preflight reads from nodes: parsers of real Linux and macOS command outputs, and the
// SHA-256 that verifies copied shards.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "controller/config/network_address.h"
#include "controller/preflight/probe_parsers.h"
#include "controller/ssh/sha256.h"
#include "controller/ssh/ssh_error.h"

namespace clusterctl::preflight {
namespace {

TEST(ProbeParsers, MeminfoAvailable) {
  std::string meminfo =
      "MemTotal:       24684352 kB\nMemFree:        24419180 kB\nMemAvailable:   24376012 kB\nBuffers: 1 kB\n";
  EXPECT_EQ(parse_meminfo_available(meminfo), 24376012ull * 1024);
  EXPECT_FALSE(parse_meminfo_available("MemTotal: 1 kB\n"));
}

TEST(ProbeParsers, VmStatAvailable) {
  // macOS 14 vm_stat, abridged.
  std::string vm =
      "Mach Virtual Memory Statistics: (page size of 16384 bytes)\n"
      "Pages free:                               12000.\n"
      "Pages active:                            300000.\n"
      "Pages inactive:                          200000.\n"
      "Pages speculative:                         5000.\n"
      "Pages throttled:                              0.\n";
  EXPECT_EQ(parse_vm_stat_available(vm), (12000ull + 200000 + 5000) * 16384);
  EXPECT_FALSE(parse_vm_stat_available("Pages free: 1.\n"));  // no page size: unknown, not a guess
}

TEST(ProbeParsers, IpLinkAndAddr) {
  std::string link =
      "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    "
      "link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
      "2: eth0@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen "
      "1000\\    link/ether 1a:2b:3c:4d:5e:6f brd ff:ff:ff:ff:ff:ff link-netnsid 0\n"
      "3: tb0@if6: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN mode DEFAULT group default qlen 1000\\    "
      "link/ether 1a:2b:3c:4d:5e:70 brd ff:ff:ff:ff:ff:ff link-netnsid 0\n";
  auto ifs = parse_ip_link(link);
  ASSERT_EQ(ifs.size(), 3u);
  EXPECT_EQ(ifs[1].name, "eth0");
  EXPECT_TRUE(ifs[1].up);
  EXPECT_EQ(ifs[2].name, "tb0");
  EXPECT_FALSE(ifs[2].up);  // LOWER_UP alone, or no UP, is not up

  std::string addr =
      "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
      "2: eth0    inet 10.77.1.2/24 scope global eth0\\       valid_lft forever preferred_lft forever\n"
      "3: tb0    inet 10.77.2.2/24 brd 10.77.2.255 scope global tb0\\       valid_lft forever preferred_lft forever\n";
  auto as = parse_ip_addr(addr);
  ASSERT_EQ(as.size(), 3u);
  EXPECT_EQ(as[2].interface, "tb0");
  EXPECT_EQ(config::ipv4_to_string(as[2].address), "10.77.2.2");
  EXPECT_EQ(as[2].prefix, 24);
}

TEST(ProbeParsers, MacIfconfig) {
  std::string text =
      "lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 16384\n"
      "\tinet 127.0.0.1 netmask 0xff000000\n"
      "en0: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500\n"
      "\tether 3c:22:fb:00:00:01\n"
      "\tinet6 fe80::1%en0 prefixlen 64 secured scopeid 0x4\n"
      "\tinet 192.168.1.20 netmask 0xffffff00 broadcast 192.168.1.255\n"
      "bridge0: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500\n"
      "\tinet 10.0.77.1 netmask 0xffffff00 broadcast 10.0.77.255\n"
      "en5: flags=8822<BROADCAST,SMART,SIMPLEX,MULTICAST> mtu 1500\n";
  std::vector<InterfaceState> ifs;
  std::vector<InterfaceAddress> as;
  parse_ifconfig(text, &ifs, &as);
  ASSERT_EQ(ifs.size(), 4u);
  EXPECT_EQ(ifs[2].name, "bridge0");
  EXPECT_TRUE(ifs[2].up);
  EXPECT_FALSE(ifs[3].up);
  ASSERT_EQ(as.size(), 3u);
  EXPECT_EQ(as[2].interface, "bridge0");
  EXPECT_EQ(config::ipv4_to_string(as[2].address), "10.0.77.1");
  EXPECT_EQ(as[2].prefix, 24);
  EXPECT_EQ(as[0].prefix, 8);
}

TEST(ProbeParsers, Version) {
  EXPECT_EQ(parse_version("clusterctl-worker 0.1.0 (built Nov 22)\n"), "0.1.0");
  EXPECT_EQ(parse_version("clusterctl-worker 12.3.45"), "12.3.45");
  EXPECT_FALSE(parse_version("clusterctl-worker dev"));
}

TEST(Cidr, ContainsAndPrint) {
  std::string why;
  auto c = config::parse_cidr("10.77.2.0/24", &why);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(*config::parse_ipv4("10.77.2.3")));
  EXPECT_FALSE(c->contains(*config::parse_ipv4("10.77.1.3")));
  EXPECT_EQ(c->to_string(), "10.77.2.0/24");
  auto all = config::parse_cidr("0.0.0.0/0", &why);
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->contains(*config::parse_ipv4("192.168.1.1")));
  EXPECT_FALSE(config::parse_ipv4("1.2.3"));
  EXPECT_FALSE(config::parse_ipv4("1.2.3.4.5"));
  EXPECT_FALSE(config::parse_ipv4("1.2.3.-4"));
}

// FIPS 180-2 test vectors.
TEST(Sha256, KnownVectors) {
  auto hex = [](const std::string& s) {
    ssh::Sha256 h;
    h.update(s.data(), s.size());
    return h.hex_digest();
  };
  EXPECT_EQ(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  ssh::Sha256 million;
  std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(chunk.data(), 7), million.update(chunk.data() + 7, 993);
  EXPECT_EQ(million.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// A file's hash (a cut shard's, up to a model's size) stops when a signal is noted, and records
// nothing then.
TEST(Sha256, AFilesHashStopsWhenTold) {
  const std::string path = ::testing::TempDir() + "sha256_stop_test.bin";
  std::ofstream(path, std::ios::binary) << std::string(3 << 20, 'a');
  std::atomic<int> stop{0};
  const std::string whole = ssh::sha256_file(path, &stop);
  EXPECT_EQ(whole.size(), 64u);
  stop = SIGINT;
  try {
    ssh::cached_sha256_file(path, &stop);
    ADD_FAILURE() << "hashing went on after the signal";
  } catch (const ssh::SshError& e) {
    EXPECT_EQ(e.kind(), ssh::SshFailure::interrupted) << e.what();
  }
  EXPECT_FALSE(ssh::recorded_sha256_file(path));
  stop = 0;
  EXPECT_EQ(ssh::cached_sha256_file(path, &stop), whole);
  EXPECT_EQ(ssh::recorded_sha256_file(path), whole);
  std::filesystem::remove(path);
  std::filesystem::remove(std::filesystem::path(path).parent_path() / ".sha256_stop_test.bin.sha256");
}

}  // namespace
}  // namespace clusterctl::preflight
