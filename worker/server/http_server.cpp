#include "worker/server/http_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "worker/server/http_session.h"

namespace clusterctl::server {

namespace {

// The model's own template, or the documented fallback when it uses Jinja this
// interpreter lacks (said loudly: prompts then differ from what the model expects).
chat::ChatTemplate template_for(const ModelInfo& model) {
  try {
    return chat::ChatTemplate(model.chat_template, model.bos_token, model.eos_token);
  } catch (const chat::TemplateError& e) {
    std::fprintf(stderr, "warning: %s; chat requests use the fallback prompt format (docs/api.md)\n", e.what());
    return chat::ChatTemplate(std::nullopt, model.bos_token, model.eos_token);
  }
}

}  // namespace

struct HttpServer::Impl {
  Impl(ServerOptions options, GenerationService& service)
      : ctx(std::move(options), service, template_for(service.model())), acceptor(asio::make_strand(ioc)) {}

  void accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
        // Out of descriptors (EMFILE, ENFILE) or memory: the connection stays in the backlog and the
        // acceptor is ready again at once, so retrying now spins a core. Wait, then try again; the
        // connections already open keep being served meanwhile.
        if (!accept_error_reported) {
          std::fprintf(stderr, "warning: cannot accept a connection (%s); retrying every %d ms\n", ec.message().c_str(),
                       static_cast<int>(kAcceptBackoff.count()));
          accept_error_reported = true;
        }
        accept_timer.expires_after(kAcceptBackoff);
        accept_timer.async_wait([this](beast::error_code tec) {
          if (tec || !acceptor.is_open()) return;
          accept();
        });
        return;
      }
      accept_error_reported = false;
      auto session = std::make_shared<HttpSession>(std::move(socket), ctx);
      {
        std::lock_guard lock(sessions_mutex);
        std::erase_if(sessions, [](const std::weak_ptr<HttpSession>& w) { return w.expired(); });
        sessions.push_back(session);
      }
      session->start();
      accept();
    });
  }

  static constexpr std::chrono::milliseconds kAcceptBackoff{100};
  ServerContext ctx;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  asio::steady_timer accept_timer{acceptor.get_executor()};  // on the acceptor's strand, as its handlers
  bool accept_error_reported = false;
  std::vector<std::thread> threads;
  std::mutex sessions_mutex;
  std::vector<std::weak_ptr<HttpSession>> sessions;
  std::mutex state_mutex;
  std::condition_variable stopped_cv;
  bool running = false;
  uint16_t bound_port = 0;
};

HttpServer::HttpServer(ServerOptions options, GenerationService& service)
    : impl_(std::make_unique<Impl>(std::move(options), service)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  Impl& s = *impl_;
  const ServerOptions& o = s.ctx.options;
  std::string host = o.host == "localhost" ? "127.0.0.1" : o.host;
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) {
    throw Error("cannot listen on '" + o.host + "': not an IP address (use e.g. 127.0.0.1, 0.0.0.0 or ::1)");
  }
  tcp::endpoint endpoint(address, o.port);
  auto fail = [&](const char* step) {
    throw Error(std::string("cannot listen on ") + host + ":" + std::to_string(o.port) + " (" + step + ": " +
                ec.message() + "); choose another --host/--port or stop the program using it");
  };
  s.acceptor.open(endpoint.protocol(), ec);
  if (ec) fail("open");
  s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  s.acceptor.bind(endpoint, ec);
  if (ec) fail("bind");
  s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("listen");
  s.bound_port = s.acceptor.local_endpoint().port();
  RequestCheckOptions& checks = s.ctx.checks;
  checks.bearer_token = o.bearer_token;
  checks.loopback_guard = o.loopback_guard && !o.bearer_token && address.is_loopback();
  checks.port = s.bound_port;
  checks.allowed_hosts = o.allowed_hosts;
  checks.cors_origins = o.cors_origins;
  checks.health_open = o.health_open;
  s.accept();
  {
    std::lock_guard lock(s.state_mutex);
    s.running = true;
  }
  for (int i = 0; i < std::max(1, o.io_threads); ++i) {
    s.threads.emplace_back([&s] {
      // A handler's exception must not end the server: say it and keep running the loop.
      for (;;) {
        try {
          s.ioc.run();
          return;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "error: an HTTP handler failed: %s\n", e.what());
        }
      }
    });
  }
}

uint16_t HttpServer::port() const { return impl_->bound_port; }

void HttpServer::stop() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.state_mutex);
    if (!s.running) return;
    s.running = false;
  }
  asio::post(s.acceptor.get_executor(), [&s] {
    beast::error_code ignored;
    s.acceptor.close(ignored);
    s.accept_timer.cancel();
  });
  {
    std::lock_guard lock(s.sessions_mutex);
    for (auto& w : s.sessions) {
      if (auto session = w.lock()) session->close();
    }
  }
  // Let the sessions' close handlers run, then stop the loop.
  asio::post(s.ioc, [&s] { s.ioc.stop(); });
  for (auto& t : s.threads) {
    if (t.joinable()) t.join();
  }
  s.threads.clear();
  s.ctx.gate->close();  // later service callbacks are dropped, not posted to a dead loop
  s.stopped_cv.notify_all();
}

void HttpServer::wait() {
  Impl& s = *impl_;
  std::unique_lock lock(s.state_mutex);
  s.stopped_cv.wait(lock, [&s] { return !s.running; });
}

}  // namespace clusterctl::server
