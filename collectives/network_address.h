#pragma once
// This host's IPv4 addresses and the networks the cluster link is named by: the one place the
// tcp transport (which address to listen on) and the worker's heartbeat (which address to send
// from) read them, so both take the same specs and refuse the same mistakes.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace clusterctl::collectives {

// "10.77.2.1" for an address in network byte order.
std::string ipv4_text(uint32_t network_order);

// An IPv4 network, "10.77.2.0/24" (a bare address is a /32).
struct Ipv4Network {
  uint32_t address = 0;  // host byte order
  int prefix = 32;
  bool contains(uint32_t network_order) const;
};
// Empty when `text` is not an IPv4 address with an optional /0../32 prefix.
std::optional<Ipv4Network> parse_ipv4_network(const std::string& text);

struct LocalAddress {
  std::string interface;  // "eth0"
  uint32_t address = 0;   // network byte order
  bool up = false;        // the interface is up
};
// Every IPv4 address of this host's interfaces, in the kernel's order. Throws CollectiveError
// when they cannot be listed.
std::vector<LocalAddress> local_ipv4_addresses();

// Checks an interface spec, a comma-separated list of CIDRs (10.77.2.0/24), addresses or interface
// names (tb0), as Open MPI's btl_tcp_if_include takes: "" when it is well formed, else what is
// wrong with which item ("'10.77.2.0/33' is not an IPv4 network like 10.0.0.0/24"). An item with
// a '.' or '/' is a network; anything else is an interface name.
std::string interface_spec_error(const std::string& spec);

// The first of `addresses` (up ones only) that the spec's items match, in the spec's order: "" when
// none does. Throws CollectiveError (interface_spec_error's text, prefixed by `what`) for a bad spec.
std::string address_matching(const std::string& spec, const std::vector<LocalAddress>& addresses,
                             const std::string& what);

// "eth0 10.0.0.2, lo 127.0.0.1": for a message saying what this host has.
std::string describe_addresses(const std::vector<LocalAddress>& addresses);

}  // namespace clusterctl::collectives
