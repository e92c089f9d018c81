#include "controller/http/http_client.h"

#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "controller/http/sse_parser.h"

namespace clusterctl::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

// One connection, driven by async operations with deadlines (Beast's sync calls have no
// timeouts): each step runs the io_context until its handler has fired.
class Connection {
 public:
  Connection(const Url& url, const ClientOptions& options) : url_(url), options_(options), stream_(ioc_) {}

  void connect() {
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    auto endpoints = resolver.resolve(url_.host, std::to_string(url_.port), ec);
    if (ec) throw ConnectionError("cannot resolve " + url_.str() + ": " + ec.message());
    stream_.expires_after(options_.connect_timeout);
    stream_.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    run();
    if (ec == beast::error::timeout) throw ConnectionError("cannot connect to " + url_.str() + ": timed out");
    if (ec) throw ConnectionError("cannot connect to " + url_.str() + ": " + ec.message());
  }

  void send(bhttp::verb verb, const std::string& path, const std::string* body, bool event_stream) {
    bhttp::request<bhttp::string_body> req(verb, url_.base_path + path, 11);
    req.set(bhttp::field::host, url_.host + ":" + std::to_string(url_.port));
    req.set(bhttp::field::user_agent, "clusterctl");
    req.set(bhttp::field::accept, event_stream ? "text/event-stream" : "application/json");
    if (options_.bearer_token) req.set(bhttp::field::authorization, "Bearer " + *options_.bearer_token);
    if (body) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = *body;
    }
    req.prepare_payload();
    beast::error_code ec;
    stream_.expires_after(options_.read_timeout);
    bhttp::async_write(stream_, req, [&](beast::error_code e, size_t) { ec = e; });
    run();
    check(ec, "sending the request");
  }

  // Reads the whole response.
  Response read_all() {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64u << 20);
    beast::error_code ec;
    stream_.expires_after(options_.read_timeout);
    bhttp::async_read(stream_, buffer_, parser, [&](beast::error_code e, size_t) { ec = e; });
    run();
    check(ec, "reading the response");
    return {static_cast<int>(parser.get().result_int()), parser.get().body()};
  }

  // Reads the header; for 200 hands body bytes to `on_bytes` as they come (until it returns
  // false), otherwise returns the whole error response.
  Response read_streamed(const std::function<bool(std::string_view)>& on_bytes, StreamCancel* cancel) {
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(
        std::numeric_limits<std::uint64_t>::max());  // not boost::none: Boost 1.74 then rejects any length
    beast::error_code ec;
    if (cancel) cancel->attach(stream_.socket().native_handle());
    struct Detach {
      StreamCancel* c;
      ~Detach() {
        if (c) c->detach();
      }
    } detach{cancel};
    stream_.expires_after(options_.read_timeout);
    bhttp::async_read_header(stream_, buffer_, parser, [&](beast::error_code e, size_t) { ec = e; });
    run();
    if (cancel && cancel->cancelled()) return {200, ""};
    check(ec, "reading the response");
    const int status = static_cast<int>(parser.get().result_int());
    std::string body;
    char chunk[8192];
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      stream_.expires_after(options_.read_timeout);
      bhttp::async_read_some(stream_, buffer_, parser, [&](beast::error_code e, size_t) { ec = e; });
      run();
      if (ec == bhttp::error::need_buffer) ec = {};
      if (cancel && cancel->cancelled()) return {200, ""};
      if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) break;  // server closed
      check(ec, "reading the response");
      const size_t n = sizeof chunk - parser.get().body().size;
      if (status != 200) {
        body.append(chunk, n);
      } else if (n > 0 && !on_bytes(std::string_view(chunk, n))) {
        break;
      }
    }
    return {status, status == 200 ? std::string() : body};
  }

  ~Connection() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  }

 private:
  void run() {
    ioc_.restart();
    ioc_.run();
  }
  void check(const beast::error_code& ec, const char* what) {
    if (!ec) return;
    if (ec == beast::error::timeout)
      throw ConnectionError(url_.str() + " did not answer within " +
                            std::to_string(options_.read_timeout.count() / 1000) + " s while " + what);
    throw ConnectionError("the connection to " + url_.str() + " failed while " + what + ": " + ec.message());
  }

  const Url& url_;
  const ClientOptions& options_;
  asio::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

}  // namespace

void StreamCancel::cancel() noexcept {
  cancelled_ = true;
  const int fd = fd_.load();
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

void StreamCancel::attach(int fd) noexcept {
  fd_ = fd;
  if (cancelled_) ::shutdown(fd, SHUT_RDWR);  // cancelled while connecting
}

HttpClient::HttpClient(Url url, ClientOptions options) : url_(std::move(url)), options_(std::move(options)) {}

Response HttpClient::get(const std::string& path) const {
  Connection c(url_, options_);
  c.connect();
  c.send(bhttp::verb::get, path, nullptr, false);
  return c.read_all();
}

Response HttpClient::post_json(const std::string& path, const std::string& body) const {
  Connection c(url_, options_);
  c.connect();
  c.send(bhttp::verb::post, path, &body, false);
  return c.read_all();
}

Response HttpClient::post_sse(const std::string& path, const std::string& body, const OnData& on_data,
                              StreamCancel* cancel) const {
  Connection c(url_, options_);
  c.connect();
  c.send(bhttp::verb::post, path, &body, true);
  SseParser parser(on_data);
  bool more = true;
  Response r = c.read_streamed([&](std::string_view bytes) { return more = parser.feed(bytes); }, cancel);
  if (r.status == 200 && more && !(cancel && cancel->cancelled())) parser.finish();
  return r;
}

std::string error_message(const Response& response) {
  auto j = nlohmann::json::parse(response.body, nullptr, false);
  if (j.is_object() && j.contains("error")) {
    const auto& e = j["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
    if (e.is_string()) return e.get<std::string>();
  }
  std::string text = response.body.substr(0, 300);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (!text.empty()) return text;
  return std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(response.status)));
}

}  // namespace clusterctl::http
