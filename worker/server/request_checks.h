#pragma once
// The checks every request passes before it is routed, as pure functions of the request head
// (so the fuzz target and the unit tests reach them without sockets): the bearer token, the
// DNS-rebinding guard of a tokenless loopback server (Host and Origin), and CORS.
#include <boost/beast/http.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clusterctl::server {

// The largest request head (request line and headers) a session reads; more is a 431.
inline constexpr size_t kMaxHeaderBytes = 16 * 1024;

struct RequestCheckOptions {
  // When set, every request except GET / (and GET /health with health_open) must send
  // "Authorization: Bearer <token>" (the scheme in any case).
  std::optional<std::string> bearer_token;
  // On for a tokenless server on loopback: Host must name the loopback address (or one of
  // allowed_hosts), and an Origin must be this server's own or in cors_origins.
  bool loopback_guard = false;
  uint16_t port = 0;                       // the bound port: Host and the server's own Origin carry it
  std::vector<std::string> allowed_hosts;  // more Host names (without port) the guard lets through
  // Origins whose pages may call the API from a browser (exact "scheme://host[:port]"; "*" = any).
  std::vector<std::string> cors_origins;
  bool health_open = false;  // GET /health needs no token
};

struct CheckFailure {
  int status;  // 401 or 403
  std::string message;
  std::string code;
};

using RequestHead = boost::beast::http::request_header<>;

// nullopt: the request may be routed; else the refusal to send.
std::optional<CheckFailure> check_request(const RequestCheckOptions& o, const RequestHead& req);
// Whether `header` (an Authorization value) carries `token` as a bearer token.
bool bearer_matches(std::string_view header, const std::string& token);
// Whether a Host header names this loopback server (localhost, 127.0.0.1, [::1], allowed_hosts; port optional).
bool host_allowed(const RequestCheckOptions& o, std::string_view host);
// Whether `origin` is in the CORS allow-list.
bool cors_allowed(const RequestCheckOptions& o, std::string_view origin);
// CORS response headers for this request: Access-Control-Allow-Origin and Vary when its Origin is
// allowed; for a preflight (OPTIONS with Access-Control-Request-Method) also the methods, headers and max age.
std::vector<std::pair<std::string, std::string>> cors_headers(const RequestCheckOptions& o, const RequestHead& req);
// Whether the request is a CORS preflight.
bool is_preflight(const RequestHead& req);

}  // namespace clusterctl::server
