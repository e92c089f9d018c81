#include "collectives/network_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "collectives/error.h"

namespace clusterctl::collectives {
namespace {

std::vector<std::string> spec_items(const std::string& spec) {
  std::vector<std::string> items;
  std::stringstream in(spec);
  for (std::string item; std::getline(in, item, ',');) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) items.push_back(item.substr(b, e - b + 1));
  }
  return items;
}

bool is_network_item(const std::string& item) { return item.find_first_of("./") != std::string::npos; }

}  // namespace

std::string ipv4_text(uint32_t network_order) {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{};
  a.s_addr = network_order;
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

bool Ipv4Network::contains(uint32_t network_order) const {
  const uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return (ntohl(network_order) & mask) == (address & mask);
}

std::optional<Ipv4Network> parse_ipv4_network(const std::string& text) {
  const auto slash = text.find('/');
  in_addr a{};
  if (inet_pton(AF_INET, text.substr(0, slash).c_str(), &a) != 1) return std::nullopt;
  Ipv4Network n;
  n.address = ntohl(a.s_addr);
  if (slash == std::string::npos) return n;
  const std::string bits = text.substr(slash + 1);
  if (bits.empty() || bits.size() > 2 || bits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  n.prefix = std::stoi(bits);
  if (n.prefix > 32) return std::nullopt;
  return n;
}

std::vector<LocalAddress> local_ipv4_addresses() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0)
    throw CollectiveError(std::string("cannot list this host's network interfaces: ") + std::strerror(errno));
  std::vector<LocalAddress> out;
  for (ifaddrs* i = list; i; i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
      out.push_back(
          {i->ifa_name, reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr, (i->ifa_flags & IFF_UP) != 0});
  freeifaddrs(list);
  return out;
}

std::string interface_spec_error(const std::string& spec) {
  const auto items = spec_items(spec);
  if (items.empty()) return "'" + spec + "' names no network or interface";
  for (const auto& item : items)
    if (is_network_item(item) && !parse_ipv4_network(item))
      return "'" + item + "' is not an IPv4 network like 10.0.0.0/24 (nor an interface name)";
  return "";
}

std::string address_matching(const std::string& spec, const std::vector<LocalAddress>& addresses,
                             const std::string& what) {
  if (const std::string e = interface_spec_error(spec); !e.empty()) throw CollectiveError(what + ": " + e);
  for (const auto& item : spec_items(spec)) {
    const auto net = is_network_item(item) ? parse_ipv4_network(item) : std::nullopt;
    for (const auto& a : addresses)
      if (a.up && (net ? net->contains(a.address) : a.interface == item)) return ipv4_text(a.address);
  }
  return "";
}

std::string describe_addresses(const std::vector<LocalAddress>& addresses) {
  std::string have;
  for (const auto& a : addresses)
    if (a.up) have += (have.empty() ? "" : ", ") + a.interface + " " + ipv4_text(a.address);
  return have.empty() ? "none" : have;
}

}  // namespace clusterctl::collectives
