#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace clusterctl::config {

// An IPv4 network such as 10.77.2.0/24. Links are named by interface or by this.
struct Ipv4Cidr {
  uint32_t network = 0;  // host byte order, host bits zero
  int prefix = 0;

  bool contains(uint32_t address) const;
  std::string to_string() const;
};

// "10.1.2.3" -> address in host byte order; nullopt when not a dotted quad of 0..255.
std::optional<uint32_t> parse_ipv4(std::string_view text);
std::string ipv4_to_string(uint32_t address);

// Parses "A.B.C.D/N". On failure returns nullopt and sets `why` to the reason; when the
// address has host bits set, `why` names the network that was probably meant.
std::optional<Ipv4Cidr> parse_cidr(std::string_view text, std::string* why);

// "HOST:PORT" (HOST may be empty or "[v6]"). On failure returns nullopt and sets `why`.
struct HostPort {
  std::string host;
  int port = 0;
};
std::optional<HostPort> parse_host_port(std::string_view text, std::string* why);

}  // namespace clusterctl::config
