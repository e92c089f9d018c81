#include "worker/server/http_session.h"

#include <sys/socket.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <ctime>
#include <sstream>

#include "worker/server/cluster_view.h"
#include "worker/server/model_endpoints.h"
#include "worker/server/openai_writer.h"
#include "worker/server/web_page.h"

namespace clusterctl::server {

namespace {

std::string path_of(beast::string_view target) {
  std::string path(target);
  size_t q = path.find('?');
  return q == std::string::npos ? path : path.substr(0, q);
}

std::string header_lines(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string out;
  for (const auto& [name, value] : headers) out += name + ": " + value + "\r\n";
  return out;
}

std::string hex(size_t n) {
  std::ostringstream s;
  s << std::hex << n;
  return s.str();
}

}  // namespace

HttpSession::HttpSession(tcp::socket socket, ServerContext& context)
    : stream_(std::move(socket)), ctx_(context), probe_timer_(stream_.get_executor()) {}

void HttpSession::start() {
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
}

void HttpSession::close() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] { self->client_gone(); });
}

// ------------------------------------------------------------------ reading

void HttpSession::read_request() {
  parser_.emplace();
  parser_->header_limit(kMaxHeaderBytes);
  parser_->body_limit(ctx_.options.max_body_bytes);
  head_ = false;
  cors_.clear();
  stream_.expires_after(ctx_.options.idle_timeout);
  http::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) return self->on_read(ec);
    auto& req = self->parser_->get();
    auto length = self->parser_->content_length();
    if (length && *length > self->ctx_.options.max_body_bytes) return self->on_read(http::error::body_limit);
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      // curl waits for this before sending a body over 1 KiB.
      self->queue_write("HTTP/1.1 100 Continue\r\n\r\n");
    }
    http::async_read(self->stream_, self->buffer_, *self->parser_,
                     [self](beast::error_code ec2, size_t) { self->on_read(ec2); });
  });
}

void HttpSession::on_read(beast::error_code ec) {
  if (ec == http::error::body_limit) {
    return send_error(ApiError(413,
                               "the request body is larger than this server's limit of " +
                                   std::to_string(ctx_.options.max_body_bytes) + " bytes",
                               "invalid_request_error", {}, "request_too_large"),
                      "other", false);
  }
  if (ec == http::error::header_limit) {
    return send_error(ApiError(431,
                               "the request's headers are larger than this server's limit of " +
                                   std::to_string(kMaxHeaderBytes) + " bytes",
                               "invalid_request_error", {}, "request_header_fields_too_large"),
                      "other", false);
  }
  if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
      ec == asio::error::connection_reset || ec == asio::error::eof) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    return;
  }
  if (ec) return send_error(invalid_request("malformed HTTP request: " + ec.message()), "other", false);
  // Nothing a request carries may leave this handler as an exception (it would end the server):
  // what the checks above missed is a 500 for this request alone.
  const bool keep_alive = parser_->get().keep_alive();
  try {
    handle(parser_->release());
  } catch (const std::exception& e) {
    if (gen_ && !gen_->handle) gen_.reset();
    send_error(ApiError(500, std::string("internal error: ") + e.what(), "server_error", {}, "internal_error"), "other",
               keep_alive);
  }
}

void HttpSession::handle(Request request) {
  const std::string path = path_of(request.target());
  // HEAD is answered as GET, without the body (send()).
  head_ = request.method() == http::verb::head;
  dialect_ = dialect_of_path(path);
  const bool get = request.method() == http::verb::get || head_;
  const bool post = request.method() == http::verb::post;
  const bool keep_alive = request.keep_alive();
  cors_ = cors_headers(ctx_.checks, request);

  auto respond = [&](int status, std::string body, const char* content_type, const std::string& endpoint) {
    Response res{static_cast<http::status>(status), request.version()};
    res.set(http::field::server, "clusterctl");
    res.set(http::field::content_type, content_type);
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    send(std::move(res), endpoint);
  };

  if (auto refused = check_request(ctx_.checks, request)) {
    Response res{static_cast<http::status>(refused->status), request.version()};
    if (refused->status == 401) res.set(http::field::www_authenticate, "Bearer");
    res.set(http::field::server, "clusterctl");
    res.set(http::field::content_type, "application/json");
    res.keep_alive(keep_alive);
    res.body() =
        error_body(dialect_, ApiError(refused->status, refused->message, "invalid_request_error", {}, refused->code))
            .dump(-1, ' ', false, Json::error_handler_t::replace);
    return send(std::move(res), refused->status == 401 ? "unauthorized" : "forbidden");
  }
  if (request.method() == http::verb::options) {
    // A CORS preflight from an allowed origin (cors_ holds its headers), or a plain OPTIONS.
    Response res{http::status::no_content, request.version()};
    res.set(http::field::server, "clusterctl");
    res.set(http::field::allow, "GET, HEAD, POST, OPTIONS");
    res.keep_alive(keep_alive);
    return send(std::move(res), "options");
  }
  if (get && (path == "/" || path == "/index.html")) {
    return respond(200, std::string(web_chat_page()), "text/html; charset=utf-8", "/");
  }
  if (get && path == "/dashboard") {
    return respond(200, std::string(web_dashboard_page()), "text/html; charset=utf-8", "/dashboard");
  }

  const ModelInfo& model = ctx_.service.model();
  if (path == "/v1/chat/completions" && post) return start_openai(request, Endpoint::chat_completions, path);
  if (path == "/v1/completions" && post) return start_openai(request, Endpoint::completions, path);
  if (route_dialects(request, path)) return;
  if (path == "/health" && get) {
    if (auto why = ctx_.service.unavailable()) {
      // A node is lost: probes and `clusterctl status` learn which, and that nothing is served.
      return respond(503, Json{{"status", "unavailable"}, {"model", model.id}, {"error", *why}}.dump(),
                     "application/json", path);
    }
    // The server listens only once every rank has loaded its part, so answering means ready.
    return respond(200, Json{{"status", "ok"}, {"model", model.id}, {"ranks", ctx_.service.nodes().size()}}.dump(),
                   "application/json", path);
  }
  if (path == "/v1/models" && get) {
    return respond(200, models_response(model, std::time(nullptr)).dump(), "application/json", path);
  }
  if (path.rfind("/v1/models/", 0) == 0 && get) {
    try {
      const Json entry = model_reply(model, path.substr(std::string_view("/v1/models/").size()), std::time(nullptr));
      return respond(200, entry.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json", "/v1/models");
    } catch (const ApiError& e) {
      return send_error(e, "/v1/models", keep_alive);
    }
  }
  if ((path == "/tokenize" || path == "/detokenize") && post) {
    try {
      const Json reply = path == "/tokenize" ? tokenize_reply(request.body(), ctx_.service)
                                             : detokenize_reply(request.body(), ctx_.service);
      return respond(200, reply.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json", path);
    } catch (const ApiError& e) {
      return send_error(e, path, keep_alive);
    }
  }
  if (path == "/metrics" && get) {
    return respond(200,
                   ctx_.metrics.prometheus_text(ctx_.service.stats()) +
                       cluster_prometheus_text(ctx_.service.nodes(), ctx_.service.load()),
                   "text/plain; version=0.0.4; charset=utf-8", path);
  }
  if (path == "/v1/cluster" && get) {
    const Json body = cluster_json(model, ctx_.service.nodes(), ctx_.service.stats(), ctx_.service.load(),
                                   ctx_.metrics.tokens_per_second());
    return respond(200, body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json", path);
  }
  static const char* const kPaths[] = {"/v1/chat/completions",
                                       "/v1/completions",
                                       "/health",
                                       "/v1/models",
                                       "/metrics",
                                       "/v1/cluster",
                                       "/v1/messages",
                                       "/api/chat",
                                       "/api/generate",
                                       "/api/tags",
                                       "/api/ps",
                                       "/api/version",
                                       "/api/show",
                                       "/tokenize",
                                       "/detokenize"};
  if (std::find(std::begin(kPaths), std::end(kPaths), path) != std::end(kPaths)) {
    return send_error(ApiError(405, "method " + std::string(request.method_string()) + " is not allowed on " + path,
                               "invalid_request_error", {}, "method_not_allowed"),
                      path, keep_alive);
  }
  send_error(
      ApiError(404, "no such endpoint: " + path + " (see docs/api.md)", "invalid_request_error", {}, "unknown_url"),
      "other", keep_alive);
}

// ------------------------------------------------------------------ plain responses

void HttpSession::send(Response response, const std::string& endpoint) {
  ctx_.metrics.count_request(endpoint, static_cast<int>(response.result_int()));
  for (const auto& [name, value] : cors_) response.set(name, value);
  if (peer_half_closed_) response.keep_alive(false);  // the client sends nothing more
  response.prepare_payload();
  const bool keep_alive = response.keep_alive();
  if (prefix_sent_) {
    // "HTTP/1.1 " went out already (half_closed()): the rest of the same bytes.
    prefix_sent_ = false;
    std::ostringstream bytes;
    bytes << response;
    queue_write(bytes.str().substr(std::string_view("HTTP/1.1 ").size()));
    resume_after_writes_ = true;
    return;
  }
  if (head_) {
    // The GET answer's headers (Content-Length included), no body.
    auto head = std::make_shared<http::response<http::empty_body>>(std::move(response.base()));
    pending_head_ = head;
    http::async_write(stream_, *head, [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
      self->pending_head_.reset();
      if (ec) return self->client_gone();
      self->after_write(keep_alive);
    });
    return;
  }
  pending_response_ = std::make_shared<Response>(std::move(response));
  http::async_write(stream_, *pending_response_, [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
    self->pending_response_.reset();
    if (ec) return self->client_gone();
    self->after_write(keep_alive);
  });
}

void HttpSession::send_error(const ApiError& error, const std::string& endpoint, bool keep_alive) {
  Response res{static_cast<http::status>(error.status()), 11};
  res.set(http::field::server, "clusterctl");
  res.set(http::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = error_body(dialect_, error).dump(-1, ' ', false, Json::error_handler_t::replace);
  send(std::move(res), endpoint);
}

void HttpSession::after_write(bool keep_alive) {
  if (gen_ && gen_->done) gen_.reset();
  if (gone_) return;
  if (peer_half_closed_) {
    keep_alive = false;
    probe_timer_.cancel();
  }
  if (!keep_alive) {
    // Lingering close: stop sending, then read (and drop) what the client still sends,
    // so the kernel does not reset the connection before the client read our answer.
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    if (watching_) {
      resume_after_watch_ = false;  // the pending watch read will see EOF and close
      return;
    }
    return drain_and_close();
  }
  if (watching_) {
    // The disconnect watch read is still pending: cancel it; its handler resumes reading.
    resume_after_watch_ = true;
    beast::error_code ignored;
    stream_.socket().cancel(ignored);
    return;
  }
  read_request();
}

void HttpSession::drain_and_close() {
  stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t) {
    self->buffer_.consume(self->buffer_.size());
    if (ec) return self->stream_.close();  // EOF from the client, or the 2 s are up
    self->drain_and_close();
  });
}

// ------------------------------------------------------------------ generation

void HttpSession::start_openai(const Request& request, Endpoint endpoint, const std::string& endpoint_name) {
  start_generation(request, endpoint_name, [&](const std::string& id, int64_t created) {
    ApiRequest api =
        parse_api_request(endpoint, request.body(), ctx_.service.model(), ctx_.chat_template, ctx_.options.limits);
    PreparedRequest prepared;
    prepared.generation = api.generation;
    prepared.stream = api.stream;
    prepared.tool_format = api.tool_format;
    prepared.parallel_tool_calls = api.parallel_tool_calls;
    prepared.writer =
        make_openai_writer(api, (endpoint == Endpoint::chat_completions ? "chatcmpl-" : "cmpl-") + id, created);
    return prepared;
  });
}

void HttpSession::start_generation(const Request& request, const std::string& endpoint_name, const Prepare& prepare) {
  const std::string id = hex(ctx_.next_request_id++) + "-" + hex(static_cast<size_t>(std::time(nullptr)));
  const int64_t created = std::time(nullptr);
  try {
    gen_ = std::make_unique<Generation>(prepare(id, created));
  } catch (const ApiError& e) {
    return send_error(e, endpoint_name, request.keep_alive());
  } catch (const std::exception& e) {
    // Every refusal is an ApiError naming its field; anything else is still the request's fault.
    return send_error(invalid_request(std::string("the request cannot be served: ") + e.what(), {}, "invalid_value"),
                      endpoint_name, request.keep_alive());
  }
  gen_->id = id;
  gen_->created = created;
  gen_->endpoint_name = endpoint_name;
  gen_->keep_alive = request.keep_alive();
  gen_->started = std::chrono::steady_clock::now();

  GenerationCallbacks callbacks;
  // Weak: the session lives while its connection does (a read or write is always
  // pending during a generation); a service calling back later reaches nothing.
  std::weak_ptr<HttpSession> weak = shared_from_this();
  auto gate = ctx_.gate;
  callbacks.on_token = [weak, gate](std::string_view piece, int32_t id) {
    gate->post(weak, [text = std::string(piece), id](HttpSession& s) { s.on_token(text, id); });
  };
  if (gen_->request.generation.sampling.logprobs >= 0) {
    callbacks.on_logprobs = [weak, gate](const TokenLogprobs& lp) {
      gate->post(weak, [lp](HttpSession& s) {
        if (s.gen_ && !s.gen_->done && !s.gen_->stop_matched) s.gen_->request.writer->add_logprobs(lp);
      });
    };
  }
  callbacks.on_done = [weak, gate](FinishReason reason, Usage usage, const std::string& message) {
    gate->post(weak, [reason, usage, message](HttpSession& s) { s.on_done(reason, usage, message); });
  };
  try {
    gen_->handle = ctx_.service.submit(gen_->request.generation, std::move(callbacks));
  } catch (const QueueFullError& e) {
    gen_.reset();
    Response res{http::status::too_many_requests, request.version()};
    res.set(http::field::retry_after, std::to_string(e.retry_after_seconds()));
    res.set(http::field::content_type, "application/json");
    res.keep_alive(request.keep_alive());
    res.body() = error_body(dialect_, ApiError(429, e.what(), "rate_limit_error", {}, "queue_full")).dump();
    return send(std::move(res), endpoint_name);
  } catch (const ServiceUnavailableError& e) {
    gen_.reset();
    return send_error(ApiError(503, e.what(), "server_error", {}, "cluster_unavailable"), endpoint_name,
                      request.keep_alive());
  } catch (const InvalidRequestError& e) {
    gen_.reset();
    return send_error(invalid_request(e.what(), {}, e.code()), endpoint_name, request.keep_alive());
  } catch (const std::exception& e) {
    gen_.reset();
    return send_error(
        ApiError(500, std::string("generation failed: ") + e.what(), "server_error", {}, "generation_failed"),
        endpoint_name, request.keep_alive());
  }
  ctx_.metrics.request_started();
  stream_.expires_never();
  if (gen_->request.stream) {
    queue_write(std::string("HTTP/1.1 200 OK\r\n"
                            "Server: clusterctl\r\n"
                            "Content-Type: ") +
                gen_->request.writer->stream_content_type() +
                "\r\n"
                "Cache-Control: no-cache\r\n"
                "X-Accel-Buffering: no\r\n"
                "Transfer-Encoding: chunked\r\n" +
                header_lines(cors_) +
                (gen_->keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n"));
    emit(gen_->request.writer->stream_begin());
    gen_->first_chunk_sent = true;
  }
  watch_for_disconnect();
}

void HttpSession::on_token(const std::string& piece, int32_t token_id) {
  if (!gen_ || gen_->done || gen_->stop_matched || gone_) return;
  if (token_id >= 0) gen_->token_ids.push_back(token_id);
  if (!gen_->got_token) {
    gen_->got_token = true;
    gen_->first_token_at = std::chrono::steady_clock::now();
    ctx_.metrics.record_time_to_first_token(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - gen_->started).count());
  }
  ctx_.metrics.record_generated_token();
  std::string text = gen_->stop.feed(gen_->utf8.feed(piece));
  if (gen_->stop.matched()) {
    gen_->stop_matched = true;
    if (gen_->handle) gen_->handle->cancel();
  }
  if (gen_->tools) text = gen_->tools->feed(text);
  if (gen_->request.stream) {
    if (!text.empty()) emit(gen_->request.writer->stream_text(text, gen_->token_ids));
    if (gen_->tools && gen_->tools->in_call()) stream_complete_calls();
  } else if (!text.empty()) {
    gen_->text += text;
  }
}

void HttpSession::on_done(FinishReason reason, Usage usage, const std::string& message) {
  if (!gen_ || gen_->done) return;  // also: the client went away (client_gone counted it)
  gen_->done = true;
  ctx_.metrics.request_finished();
  ctx_.metrics.add_tokens(usage.prompt_tokens, usage.completion_tokens);
  Generation& g = *gen_;
  if (reason == FinishReason::error) {
    ApiError error(500, "generation failed: " + message, "server_error", {}, "generation_failed");
    if (!g.request.stream) return send_error(error, g.endpoint_name, g.keep_alive);
    ctx_.metrics.count_request(g.endpoint_name, 500);
    emit(g.request.writer->stream_error(error));
    return finish_generation();
  }
  std::string rest;
  if (!g.stop_matched) {
    rest = g.stop.feed(g.utf8.flush());
    if (!g.stop.matched()) rest += g.stop.flush();
  }
  Outcome outcome;
  outcome.reason = reason;
  outcome.usage = usage;
  const auto now = std::chrono::steady_clock::now();
  outcome.total_seconds = std::chrono::duration<double>(now - g.started).count();
  outcome.prompt_seconds =
      g.got_token ? std::chrono::duration<double>(g.first_token_at - g.started).count() : outcome.total_seconds;
  if (g.stop_matched || g.stop.matched()) outcome.stop_sequence = g.stop.matched_string();
  if (g.tools) {
    rest = g.tools->feed(rest);
    chat::ToolCallParser::Result parsed = g.tools->finish();
    rest += parsed.content;
    outcome.tool_calls = std::move(g.streamed_calls);
    outcome.streamed_calls = outcome.tool_calls.size();
    outcome.tool_calls.insert(outcome.tool_calls.end(), parsed.calls.begin(), parsed.calls.end());
    if (!g.request.parallel_tool_calls && outcome.tool_calls.size() > 1) outcome.tool_calls.resize(1);
    assign_tool_call_ids(outcome.tool_calls, g.request.tool_id_prefix, g.id);
  }
  if (!g.request.stream) {
    g.text += rest;
    Response res{http::status::ok, 11};
    res.set(http::field::server, "clusterctl");
    res.set(http::field::content_type, "application/json");
    res.keep_alive(g.keep_alive);
    res.body() = g.request.writer->whole(g.text, outcome, g.token_ids);
    return send(std::move(res), g.endpoint_name);
  }
  ctx_.metrics.count_request(g.endpoint_name, 200);
  if (!rest.empty()) emit(g.request.writer->stream_text(rest, g.token_ids));
  emit(g.request.writer->stream_end(outcome, g.token_ids));
  finish_generation();
}

void HttpSession::stream_complete_calls() {
  Generation& g = *gen_;
  if (!g.request.parallel_tool_calls && !g.streamed_calls.empty()) return;  // only the first is kept
  std::vector<chat::ToolCall> calls = g.tools->take_complete();
  if (calls.empty()) return;
  if (!g.request.parallel_tool_calls) calls.resize(1);
  assign_tool_call_ids(calls, g.request.tool_id_prefix, g.id, g.streamed_calls.size());
  emit(g.request.writer->stream_tool_calls(calls, g.streamed_calls.size()));
  g.streamed_calls.insert(g.streamed_calls.end(), calls.begin(), calls.end());
}

void HttpSession::emit(std::string events) {
  if (!events.empty()) queue_event(events);
}

void HttpSession::finish_generation() {
  queue_write("0\r\n\r\n");  // last chunk of the chunked body
  resume_after_writes_ = true;
  if (!writing_ && outbox_.empty()) {
    resume_after_writes_ = false;
    after_write(gen_ ? gen_->keep_alive : false);
  }
}

void HttpSession::watch_for_disconnect() {
  watching_ = true;
  stream_.async_read_some(buffer_.prepare(1024), [self = shared_from_this()](beast::error_code ec, size_t n) {
    self->watching_ = false;
    if (!ec) self->buffer_.commit(n);  // a pipelined request: keep it for the parser
    if (self->resume_after_watch_) {
      self->resume_after_watch_ = false;
      if (!self->gone_) self->read_request();
      return;
    }
    if (ec == asio::error::eof && self->gen_ && !self->gen_->done) return self->half_closed();
    if (ec) {
      if (self->gen_ && !self->gen_->done) return self->client_gone();  // disconnected mid-request
      if (ec == asio::error::eof) {
        // Half-closed while the answer is being written: let the write finish; after_write closes.
        self->peer_half_closed_ = true;
        return;
      }
      beast::error_code ignored;
      self->stream_.socket().close(ignored);
      return;
    }
    if (self->buffer_.size() > self->ctx_.options.max_body_bytes) return self->client_gone();
    if (self->gen_ && !self->gen_->done) self->watch_for_disconnect();
  });
}

// EOF while a request runs: the client either closed the connection or only its sending side
// (shutdown(SHUT_WR) after the request, as some clients do); on the wire the two look the same
// until the server sends something, which a closed socket answers with a reset. So the answer
// goes on, something is sent (a stream's header is out already; for a whole answer the
// "HTTP/1.1 " every answer starts with), and a timer looks for the reset (SO_ERROR): a closed
// client still cancels its request within a fraction of a second, a half-closed one gets its answer.
void HttpSession::half_closed() {
  peer_half_closed_ = true;
  if (!gen_->request.stream && !prefix_sent_) {
    prefix_sent_ = true;
    queue_write("HTTP/1.1 ");
  }
  probe_for_reset();
}

void HttpSession::probe_for_reset() {
  probe_timer_.expires_after(std::chrono::milliseconds(100));
  probe_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->gone_ || !self->gen_ || self->gen_->done) return;
    int error = 0;
    socklen_t len = sizeof error;
    if (::getsockopt(self->stream_.socket().native_handle(), SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error != 0) {
      return self->client_gone();
    }
    self->probe_for_reset();
  });
}

void HttpSession::client_gone() {
  if (gone_) return;
  gone_ = true;
  if (gen_ && !gen_->done) {
    if (gen_->handle) gen_->handle->cancel();  // frees the slot at once
    gen_->done = true;
    ctx_.metrics.request_finished();
    ctx_.metrics.count_request(gen_->endpoint_name, 499);  // client closed the request
  }
  probe_timer_.cancel();
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
}

// ------------------------------------------------------------------ raw writes

void HttpSession::queue_event(const std::string& event) { queue_write(hex(event.size()) + "\r\n" + event + "\r\n"); }

void HttpSession::queue_write(std::string bytes) {
  if (gone_) return;
  outbox_.push_back(std::move(bytes));
  write_next();
}

void HttpSession::write_next() {
  if (writing_ || outbox_.empty()) return;
  writing_ = true;
  asio::async_write(stream_, asio::buffer(outbox_.front()), [self = shared_from_this()](beast::error_code ec, size_t) {
    self->writing_ = false;
    if (ec) return self->client_gone();
    self->outbox_.pop_front();
    if (!self->outbox_.empty()) return self->write_next();
    if (self->resume_after_writes_) {
      self->resume_after_writes_ = false;
      self->after_write(self->gen_ ? self->gen_->keep_alive : false);
    }
  });
}

}  // namespace clusterctl::server
