#include "worker/server/request_checks.h"

#include <boost/beast/core/string.hpp>
#include <cctype>

namespace clusterctl::server {

namespace http = boost::beast::http;

namespace {

std::string_view sv(boost::beast::string_view v) { return {v.data(), v.size()}; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string path_of(std::string_view target) { return std::string(target.substr(0, target.find('?'))); }

// "host[:port]" -> host (brackets kept for IPv6) and port ("" when none); false when malformed.
bool split_host(std::string_view value, std::string& host, std::string& port) {
  value = trim(value);
  if (value.empty()) return false;
  size_t colon;
  if (value.front() == '[') {
    const size_t close = value.find(']');
    if (close == std::string_view::npos) return false;
    host = lower(value.substr(0, close + 1));
    if (close + 1 == value.size()) return port.clear(), true;
    if (value[close + 1] != ':') return false;
    colon = close + 1;
  } else {
    colon = value.find(':');
    host = lower(value.substr(0, colon));
    if (colon == std::string_view::npos) return port.clear(), true;
  }
  port = std::string(value.substr(colon + 1));
  if (port.empty() || port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool loopback_name(const RequestCheckOptions& o, const std::string& host) {
  if (host == "localhost" || host == "127.0.0.1" || host == "[::1]") return true;
  for (const auto& h : o.allowed_hosts) {
    if (lower(h) == host) return true;
  }
  return false;
}

// The page this server itself serves (GET /) calls the API from its own origin.
bool own_origin(const RequestCheckOptions& o, std::string_view origin) {
  constexpr std::string_view scheme = "http://";
  if (origin.size() <= scheme.size() || lower(origin.substr(0, scheme.size())) != scheme) return false;
  std::string host, port;
  if (!split_host(origin.substr(scheme.size()), host, port)) return false;
  const std::string want = o.port == 80 ? "" : std::to_string(o.port);
  return loopback_name(o, host) && (port == want || (port == "80" && o.port == 80));
}

}  // namespace

bool bearer_matches(std::string_view header, const std::string& token) {
  header = trim(header);
  // RFC 9110: the auth scheme is case-insensitive; one or more spaces before the credentials.
  constexpr std::string_view scheme = "bearer";
  if (header.size() <= scheme.size() || lower(header.substr(0, scheme.size())) != scheme) return false;
  if (header[scheme.size()] != ' ' && header[scheme.size()] != '\t') return false;
  return constant_time_equal(trim(header.substr(scheme.size())), token);
}

bool host_allowed(const RequestCheckOptions& o, std::string_view value) {
  std::string host, port;
  if (!split_host(value, host, port)) return false;
  if (!loopback_name(o, host)) return false;
  return port.empty() || port == std::to_string(o.port);
}

bool cors_allowed(const RequestCheckOptions& o, std::string_view origin) {
  for (const auto& allowed : o.cors_origins) {
    if (allowed == "*" || lower(allowed) == lower(origin)) return true;
  }
  return false;
}

bool is_preflight(const RequestHead& req) {
  return req.method() == http::verb::options && req.find(http::field::origin) != req.end() &&
         req.find(http::field::access_control_request_method) != req.end();
}

std::optional<CheckFailure> check_request(const RequestCheckOptions& o, const RequestHead& req) {
  if (o.loopback_guard) {
    // A page on another site that resolves its name to 127.0.0.1 (DNS rebinding) sends its own
    // name as Host; a cross-site page sends its Origin. Neither reaches a tokenless local server.
    if (auto host = req.find(http::field::host); host != req.end() && !host_allowed(o, sv(host->value()))) {
      return CheckFailure{403,
                          "Host '" + std::string(host->value().substr(0, 200)) +
                              "' is not this server's loopback address: a server without a token on loopback answers "
                              "only Host localhost, 127.0.0.1 or [::1] (DNS rebinding guard); use one of those, or "
                              "add the name with --allowed-host, or set a token (--token-file)",
                          "host_not_allowed"};
    }
    if (auto origin = req.find(http::field::origin); origin != req.end()) {
      const std::string_view value = sv(origin->value());
      if (!own_origin(o, value) && !cors_allowed(o, value)) {
        return CheckFailure{403,
                            "Origin '" + std::string(value.substr(0, 200)) +
                                "' may not call this server: a server without a token on loopback answers pages of "
                                "other sites only when --cors-origin names them",
                            "origin_not_allowed"};
      }
    }
  } else if (is_preflight(req)) {
    const std::string_view origin = sv(req[http::field::origin]);
    if (!cors_allowed(o, origin)) {
      return CheckFailure{403, "Origin '" + std::string(origin.substr(0, 200)) + "' is not in --cors-origin",
                          "origin_not_allowed"};
    }
  }
  if (!o.bearer_token || is_preflight(req)) return std::nullopt;  // browsers send no credentials in a preflight
  const std::string path = path_of(sv(req.target()));
  const bool read = req.method() == http::verb::get || req.method() == http::verb::head;
  if (read && (path == "/" || path == "/index.html" || path == "/dashboard"))
    return std::nullopt;  // the pages hold no data (they ask the API with the token)
  if (read && path == "/health" && o.health_open) return std::nullopt;
  if (bearer_matches(sv(req[http::field::authorization]), *o.bearer_token)) return std::nullopt;
  // Anthropic's clients send the key as x-api-key.
  if (auto key = req.find("x-api-key");
      key != req.end() && constant_time_equal(trim(sv(key->value())), *o.bearer_token))
    return std::nullopt;
  return CheckFailure{401,
                      "missing or wrong API key: send the server's token as 'Authorization: Bearer <token>' (or "
                      "'x-api-key: <token>')",
                      "invalid_api_key"};
}

std::vector<std::pair<std::string, std::string>> cors_headers(const RequestCheckOptions& o, const RequestHead& req) {
  std::vector<std::pair<std::string, std::string>> out;
  auto origin = req.find(http::field::origin);
  if (o.cors_origins.empty() || origin == req.end()) return out;
  out.emplace_back("Vary", "Origin");
  if (!cors_allowed(o, sv(origin->value()))) return out;
  out.emplace_back("Access-Control-Allow-Origin", std::string(origin->value()));
  if (is_preflight(req)) {
    out.emplace_back("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS");
    // The headers the page asks for (the OpenAI SDKs send their own X-Stainless-* ones), when they are
    // plain header names; else the two every API call needs.
    std::string asked(sv(req[http::field::access_control_request_headers]).substr(0, 1024));
    const bool plain = !asked.empty() &&
                       asked.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_, ") ==
                           std::string::npos;
    out.emplace_back("Access-Control-Allow-Headers", plain ? asked : "Authorization, Content-Type");
    out.emplace_back("Access-Control-Max-Age", "600");
  }
  return out;
}

}  // namespace clusterctl::server
