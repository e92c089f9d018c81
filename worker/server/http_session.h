#pragma once
// One client connection: reads requests, answers the simple ones, and drives a
// generation (streamed as server-sent events or answered whole). Internal to the server.
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "worker/chat/chat_template.h"
#include "worker/server/http_server.h"
#include "worker/server/request_checks.h"
#include "worker/server/response_writer.h"
#include "worker/server/server_metrics.h"
#include "worker/server/stop_matcher.h"

namespace clusterctl::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Lets service callbacks reach a session only while the server's event loop exists:
// a service may call on_done after the server was stopped and destroyed.
struct CallbackGate {
  std::mutex mutex;
  bool open = true;
  // Runs fn(session) on the session's strand, if both the server and the session live.
  template <class Session, class Fn>
  void post(const std::weak_ptr<Session>& weak, Fn&& fn) {
    std::lock_guard lock(mutex);
    if (!open) return;
    if (auto session = weak.lock()) {
      asio::post(session->executor(), [session, fn = std::forward<Fn>(fn)]() mutable { fn(*session); });
    }
  }
  void close() {
    std::lock_guard lock(mutex);
    open = false;
  }
};

// What all sessions share: configuration, the service, metrics.
struct ServerContext {
  ServerContext(ServerOptions o, GenerationService& s, chat::ChatTemplate t)
      : options(std::move(o)), service(s), chat_template(std::move(t)) {}
  ServerOptions options;
  GenerationService& service;
  chat::ChatTemplate chat_template;
  RequestCheckOptions checks;  // set by HttpServer::start() once the port is bound
  ServerMetrics metrics;
  std::atomic<uint64_t> next_request_id{1};
  std::shared_ptr<CallbackGate> gate = std::make_shared<CallbackGate>();
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, ServerContext& context);
  void start();
  void close();  // from any thread: cancels a running generation and drops the connection
  auto executor() { return stream_.get_executor(); }

 private:
  using Request = http::request<http::string_body>;
  using Response = http::response<http::string_body>;

  void read_request();
  void on_read(beast::error_code ec);
  void handle(Request request);
  void send(Response response, const std::string& endpoint);
  void send_error(const ApiError& error, const std::string& endpoint, bool keep_alive);
  void after_write(bool keep_alive);
  void drain_and_close();  // lingering close after a response with Connection: close

  // generation
  // `prepare` parses the body into a request (throws ApiError); it gets the request's id and time.
  using Prepare = std::function<PreparedRequest(const std::string& id, int64_t created)>;
  void start_generation(const Request& request, const std::string& endpoint_name, const Prepare& prepare);
  void start_openai(const Request& request, Endpoint endpoint, const std::string& endpoint_name);
  // The Ollama (/api/*) and Anthropic (/v1/messages) routes (http_session_dialects.cpp); false: not theirs.
  bool route_dialects(const Request& request, const std::string& path);
  void send_json(const Json& body, const std::string& endpoint, bool keep_alive);
  void emit(std::string events);  // streamed events, as one HTTP chunk
  void stream_complete_calls();   // tool calls the answer has completed, sent before it ends
  void on_token(const std::string& piece, int32_t token_id);
  void on_done(FinishReason reason, Usage usage, const std::string& message);
  void watch_for_disconnect();
  void half_closed();  // the client sent EOF after its request: answer it, watch for a reset
  void probe_for_reset();
  void client_gone();
  void queue_write(std::string bytes);  // raw bytes (stream header, chunks)
  void write_next();
  void queue_event(const std::string& event);  // one SSE event as an HTTP chunk
  void finish_generation();

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  ServerContext& ctx_;

  struct Generation {
    PreparedRequest request;
    std::optional<chat::ToolCallParser> tools;
    std::vector<chat::ToolCall> streamed_calls;  // sent while streaming (ids assigned)
    std::string id;
    int64_t created = 0;
    std::string endpoint_name;
    bool keep_alive = true;
    std::shared_ptr<GenerationHandle> handle;
    StopMatcher stop;
    Utf8Joiner utf8;
    std::string text;                // non-streamed: the answer so far
    std::vector<int32_t> token_ids;  // all ids (non-streamed) / not yet sent (streamed)
    bool first_chunk_sent = false;
    bool got_token = false;
    bool stop_matched = false;
    bool done = false;  // on_done handled
    std::chrono::steady_clock::time_point started, first_token_at;
    explicit Generation(PreparedRequest r) : request(std::move(r)), stop(request.generation.stop) {
      if (request.tool_format) tools.emplace(*request.tool_format);
    }
  };
  std::unique_ptr<Generation> gen_;
  bool watching_ = false;  // a disconnect-watch read is pending
  bool gone_ = false;      // the client went away
  bool resume_after_watch_ = false;
  std::deque<std::string> outbox_;
  bool writing_ = false;
  bool resume_after_writes_ = false;
  std::shared_ptr<Response> pending_response_;
  std::shared_ptr<http::response<http::empty_body>> pending_head_;
  Dialect dialect_ = Dialect::openai;                      // the shape of this request's errors
  bool head_ = false;                                      // the request being answered is a HEAD: headers only
  std::vector<std::pair<std::string, std::string>> cors_;  // CORS headers for the current request's answers
  bool peer_half_closed_ = false;
  bool prefix_sent_ = false;  // "HTTP/1.1 " of a whole answer already written (see half_closed())
  asio::steady_timer probe_timer_;
};

}  // namespace clusterctl::server
