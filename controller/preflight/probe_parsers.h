#pragma once
// Parsers for what preflight reads from a node's commands (Linux and macOS forms). Pure
// functions of the text, so they are tested on captured outputs.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace clusterctl::preflight {

// Bytes of memory available to a new process: MemAvailable from /proc/meminfo.
std::optional<uint64_t> parse_meminfo_available(const std::string& meminfo);
// macOS `vm_stat`: (free + inactive + speculative) pages × the page size it names in its header.
std::optional<uint64_t> parse_vm_stat_available(const std::string& vm_stat);

struct InterfaceAddress {
  std::string interface;
  uint32_t address = 0;  // IPv4, host byte order
  int prefix = 0;
};

// Linux `ip -o link show`: interface names (without @peer), and whether each is up.
struct InterfaceState {
  std::string name;
  bool up = false;
};
std::vector<InterfaceState> parse_ip_link(const std::string& text);
// Linux `ip -o -4 addr show`.
std::vector<InterfaceAddress> parse_ip_addr(const std::string& text);
// macOS (BSD) `ifconfig -a`: both the interfaces (with UP flag) and their IPv4 addresses.
void parse_ifconfig(const std::string& text, std::vector<InterfaceState>* interfaces,
                    std::vector<InterfaceAddress>* addresses);

// The first "X.Y.Z" in a `--version` line ("clusterctl-worker 0.1.0 (abc)" -> "0.1.0").
std::optional<std::string> parse_version(const std::string& text);

}  // namespace clusterctl::preflight
