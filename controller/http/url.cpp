#include "controller/http/url.h"

#include <charconv>

#include "worker/common/error.h"

namespace clusterctl::http {

Url Url::parse(const std::string& text) {
  const std::string scheme = "http://";
  if (text.rfind("https://", 0) == 0)
    throw Error("'" + text + "': https is not supported; use the server's plain http:// address");
  std::string rest = text.rfind(scheme, 0) == 0 ? text.substr(scheme.size()) : text;
  if (rest.find("://") != std::string::npos)
    throw Error("'" + text + "' is not an http:// address: give e.g. http://127.0.0.1:8080");
  Url url;
  const auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) url.base_path = rest.substr(slash);
  while (!url.base_path.empty() && url.base_path.back() == '/') url.base_path.pop_back();
  if (!authority.empty() && authority.front() == '[') {  // [::1]:8080
    const auto close = authority.find(']');
    if (close == std::string::npos) throw Error("'" + text + "': unterminated IPv6 address; write http://[::1]:8080");
    url.host = authority.substr(1, close - 1);
    authority = authority.substr(close + 1);
  } else {
    const auto colon = authority.rfind(':');
    url.host = authority.substr(0, colon);
    authority = colon == std::string::npos ? "" : authority.substr(colon);
  }
  if (url.host.empty()) throw Error("'" + text + "' names no host: give e.g. http://127.0.0.1:8080");
  if (!authority.empty()) {
    if (authority.front() != ':')
      throw Error("'" + text + "' is not an http:// address: give e.g. http://127.0.0.1:8080");
    const std::string port = authority.substr(1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
      throw Error("'" + text + "': the port must be a number from 1 to 65535");
    url.port = static_cast<uint16_t>(value);
  }
  return url;
}

std::string Url::str() const {
  const bool v6 = host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + base_path;
}

}  // namespace clusterctl::http
