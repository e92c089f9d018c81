#pragma once
// An http:// address of an OpenAI-compatible server, e.g. "http://127.0.0.1:8080" or
// "http://host:8080/prefix" (requests go to <prefix>/v1/...).
#include <cstdint>
#include <string>

namespace clusterctl::http {

struct Url {
  std::string host;
  uint16_t port = 80;
  std::string base_path;  // "" or "/prefix", never ending in '/'

  // Throws clusterctl::Error naming the text when it is not an http:// URL (https is not
  // supported: the API is meant for a private link; put a TLS proxy in front otherwise).
  static Url parse(const std::string& text);
  std::string str() const;  // "http://host:port/prefix"
};

}  // namespace clusterctl::http
