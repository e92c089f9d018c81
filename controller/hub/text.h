#pragma once
// Small text helpers of the hub client: header names, tokens, quant names, SHA-256 digests.
#include <string>
#include <string_view>

namespace clusterctl::hub {

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Without leading and trailing spaces, tabs and line ends.
inline std::string trim_space(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  return std::string(s);
}

// 64 lowercase hex digits: an LFS object id, the name of a blob in the hub cache.
inline bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace clusterctl::hub
