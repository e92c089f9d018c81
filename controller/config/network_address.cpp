#include "controller/config/network_address.h"

#include <charconv>

namespace clusterctl::config {

namespace {

std::optional<long> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;  // from_chars would take a sign
  long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

uint32_t prefix_mask(int prefix) { return prefix == 0 ? 0 : ~uint32_t(0) << (32 - prefix); }

}  // namespace

bool Ipv4Cidr::contains(uint32_t address) const { return (address & prefix_mask(prefix)) == network; }

std::string Ipv4Cidr::to_string() const { return ipv4_to_string(network) + "/" + std::to_string(prefix); }

std::optional<uint32_t> parse_ipv4(std::string_view text) {
  uint32_t address = 0;
  for (int part = 0; part < 4; ++part) {
    size_t dot = part < 3 ? text.find('.') : text.size();
    if (dot == std::string_view::npos) return std::nullopt;
    auto v = parse_decimal(text.substr(0, dot));
    if (!v || *v > 255) return std::nullopt;
    address = address << 8 | uint32_t(*v);
    text = part < 3 ? text.substr(dot + 1) : std::string_view();
  }
  return address;
}

std::string ipv4_to_string(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 255) + "." + std::to_string(a >> 8 & 255) + "." +
         std::to_string(a & 255);
}

std::optional<Ipv4Cidr> parse_cidr(std::string_view text, std::string* why) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    *why = "a CIDR needs a prefix length, like 10.0.0.0/24";
    return std::nullopt;
  }
  auto address = parse_ipv4(text.substr(0, slash));
  if (!address) {
    why->assign(text.substr(0, slash));
    why->insert(0, 1, '\'');
    why->append("' is not an IPv4 address (four numbers 0..255)");
    return std::nullopt;
  }
  auto prefix = parse_decimal(text.substr(slash + 1));
  if (!prefix || *prefix > 32) {
    *why = "the prefix length after '/' must be a number from 0 to 32";
    return std::nullopt;
  }
  Ipv4Cidr cidr{*address & prefix_mask(int(*prefix)), int(*prefix)};
  if (cidr.network != *address) {
    *why = "host bits are set; the network is " + cidr.to_string();
    return std::nullopt;
  }
  return cidr;
}

std::optional<HostPort> parse_host_port(std::string_view text, std::string* why) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    *why = "expected HOST:PORT, like 127.0.0.1:8080";
    return std::nullopt;
  }
  auto port = parse_decimal(text.substr(colon + 1));
  if (!port || *port < 1 || *port > 65535) {
    *why = "the port after ':' must be a number from 1 to 65535";
    return std::nullopt;
  }
  return HostPort{std::string(text.substr(0, colon)), int(*port)};
}

}  // namespace clusterctl::config
