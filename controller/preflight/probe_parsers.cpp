#include "controller/preflight/probe_parsers.h"

#include <regex>
#include <sstream>

#include "controller/config/network_address.h"

namespace clusterctl::preflight {
namespace {

// "BROADCAST,MULTICAST,UP,LOWER_UP" holds "UP" as a whole item (not LOWER_UP).
bool has_flag(const std::string& flags, std::string_view flag) {
  size_t start = 0;
  while (start <= flags.size()) {
    size_t comma = flags.find(',', start);
    if (comma == std::string::npos) comma = flags.size();
    if (std::string_view(flags).substr(start, comma - start) == flag) return true;
    start = comma + 1;
  }
  return false;
}

}  // namespace

std::optional<uint64_t> parse_meminfo_available(const std::string& meminfo) {
  static const std::regex re(R"(^MemAvailable:\s+(\d+)\s+kB)", std::regex::multiline);
  std::smatch m;
  if (!std::regex_search(meminfo, m, re)) return std::nullopt;
  return std::stoull(m[1]) * 1024;
}

std::optional<uint64_t> parse_vm_stat_available(const std::string& vm_stat) {
  std::smatch m;
  static const std::regex page_re(R"(page size of (\d+) bytes)");
  if (!std::regex_search(vm_stat, m, page_re)) return std::nullopt;
  uint64_t page = std::stoull(m[1]);
  uint64_t pages = 0;
  bool any = false;
  for (const char* key : {"Pages free", "Pages inactive", "Pages speculative"}) {
    std::regex re(std::string("^") + key + R"(:\s+(\d+))", std::regex::multiline);
    if (std::regex_search(vm_stat, m, re)) pages += std::stoull(m[1]), any = true;
  }
  if (!any) return std::nullopt;
  return pages * page;
}

std::vector<InterfaceState> parse_ip_link(const std::string& text) {
  // "3: tb0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 ... state UP ..."
  static const std::regex re(R"(^\d+:\s+([^:@\s]+)(@\S+)?:\s+<([^>]*)>)", std::regex::multiline);
  std::vector<InterfaceState> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    out.push_back({(*it)[1].str(), has_flag((*it)[3].str(), "UP")});
  }
  return out;
}

std::vector<InterfaceAddress> parse_ip_addr(const std::string& text) {
  // "3: tb0    inet 10.77.2.2/24 brd ... scope global tb0\       valid_lft ..."
  static const std::regex re(R"(^\d+:\s+(\S+)\s+inet\s+(\d+\.\d+\.\d+\.\d+)/(\d+))", std::regex::multiline);
  std::vector<InterfaceAddress> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    auto a = config::parse_ipv4((*it)[2].str());
    if (a) out.push_back({(*it)[1].str(), *a, std::stoi((*it)[3])});
  }
  return out;
}

void parse_ifconfig(const std::string& text, std::vector<InterfaceState>* interfaces,
                    std::vector<InterfaceAddress>* addresses) {
  // "bridge0: flags=8863<UP,BROADCAST,...> mtu 1500" then "\tinet 10.0.77.1 netmask 0xffffff00 ..."
  static const std::regex head_re(R"(^([A-Za-z0-9_.-]+): flags=\w+<([^>]*)>)");
  static const std::regex inet_re(R"(^\s+inet (\d+\.\d+\.\d+\.\d+) netmask 0x([0-9a-fA-F]{8}))");
  std::istringstream in(text);
  std::string line, current;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, head_re)) {
      current = m[1];
      interfaces->push_back({current, has_flag(m[2].str(), "UP")});
    } else if (!current.empty() && std::regex_search(line, m, inet_re)) {
      auto a = config::parse_ipv4(m[1].str());
      uint32_t mask = uint32_t(std::stoul(m[2].str(), nullptr, 16));
      if (a) addresses->push_back({current, *a, __builtin_popcount(mask)});
    }
  }
}

std::optional<std::string> parse_version(const std::string& text) {
  static const std::regex re(R"((\d+\.\d+\.\d+))");
  std::smatch m;
  if (!std::regex_search(text, m, re)) return std::nullopt;
  return m[1].str();
}

}  // namespace clusterctl::preflight
