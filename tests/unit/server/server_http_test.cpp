// The HTTP layer over real sockets on 127.0.0.1, with Beast as the client and the
// test-only word-streaming service behind it (tests/unit/server/server_test_word_service.h).
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <fstream>

#include "tests/unit/server/server_test_word_service.h"
#include "worker/server/http_server.h"

namespace clusterctl::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using testing::WordStreamTestOptions;
using testing::WordStreamTestService;

struct Reply {
  int status = 0;
  http::fields headers;
  std::string body;
  Json json() const { return Json::parse(body); }
};

// A client connection; several requests may go over it (keep-alive).
class Client {
 public:
  explicit Client(uint16_t port) : stream_(ioc_) {
    stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  Reply send(http::verb method, const std::string& target, const std::string& body = {},
             const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (method == http::verb::post) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(stream_, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    if (method == http::verb::head) parser.skip(true);  // headers only
    http::read(stream_, buffer_, parser);
    auto res = parser.release();
    Reply r;
    r.status = static_cast<int>(res.result_int());
    r.headers = res.base();
    r.body = res.body();
    return r;
  }
  Reply post(const std::string& target, const Json& body,
             const std::vector<std::pair<std::string, std::string>>& h = {}) {
    return send(http::verb::post, target, body.dump(), h);
  }
  beast::tcp_stream& stream() { return stream_; }
  beast::flat_buffer& buffer() { return buffer_; }

 private:
  asio::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

// The SSE events of a streamed body: the JSON of every "data:" line, [DONE] as a string.
std::vector<Json> sse_events(const std::string& body) {
  std::vector<Json> events;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "event not terminated by a blank line: " << body.substr(pos);
    if (end == std::string::npos) break;
    std::string event = body.substr(pos, end - pos);
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    std::string data = event.substr(6);
    events.push_back(data == "[DONE]" ? Json("[DONE]") : Json::parse(data));
    pos = end + 2;
  }
  return events;
}

std::string joined(const std::vector<std::string>& pieces, size_t n = std::string::npos) {
  std::string out;
  for (size_t i = 0; i < pieces.size() && i < n; ++i) out += pieces[i];
  return out;
}

class ServerTest : public ::testing::Test {
 protected:
  void start(WordStreamTestOptions service_options = {}, ServerOptions options = {}) {
    service_ = std::make_unique<WordStreamTestService>(service_options);
    options.port = 0;
    server_ = std::make_unique<HttpServer>(options, *service_);
    server_->start();
  }
  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    service_.reset();
  }
  uint16_t port() const { return server_->port(); }
  Json chat_body(const std::string& text, Json extra = Json::object()) {
    Json body = {{"model", "word-stream-test"}, {"messages", Json::array({{{"role", "user"}, {"content", text}}})}};
    for (auto it = extra.begin(); it != extra.end(); ++it) body[it.key()] = it.value();
    return body;
  }
  void expect_error(const Reply& r, int status, const std::string& code, const std::string& param = {}) {
    EXPECT_EQ(r.status, status) << r.body;
    Json j = r.json();
    ASSERT_TRUE(j.contains("error")) << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
    EXPECT_TRUE(j["error"]["type"].is_string());
    EXPECT_TRUE(j["error"].contains("param"));
    EXPECT_EQ(j["error"]["code"], code) << r.body;
    if (!param.empty()) {
      EXPECT_EQ(j["error"]["param"], param) << r.body;
    }
  }

  std::unique_ptr<WordStreamTestService> service_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(ServerTest, ListensOnLoopbackByDefault) {
  EXPECT_EQ(ServerOptions{}.host, "127.0.0.1");
  start();
  Client c(port());
  Reply r = c.send(http::verb::get, "/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["status"], "ok");
}

TEST_F(ServerTest, ModelsMetricsClusterAndPage) {
  start();
  Client c(port());
  Reply models = c.send(http::verb::get, "/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(models.json()["object"], "list");
  EXPECT_EQ(models.json()["data"][0]["id"], "word-stream-test");

  ASSERT_EQ(c.post("/v1/completions", {{"model", "word-stream-test"}, {"prompt", "a b c"}}).status, 200);
  Reply metrics = c.send(http::verb::get, "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.headers[http::field::content_type].find("text/plain"), beast::string_view::npos);
  for (const char* name : {"clusterctl_http_requests_total{endpoint=\"/v1/completions\",code=\"200\"} 1",
                           "clusterctl_generation_tokens_total 3", "clusterctl_prompt_tokens_total 3",
                           "clusterctl_generation_tokens_per_second", "clusterctl_time_to_first_token_seconds_count 1",
                           "clusterctl_queue_depth 0", "clusterctl_allreduce_seconds_total"}) {
    EXPECT_NE(metrics.body.find(name), std::string::npos) << name << "\n" << metrics.body;
  }
  Reply cluster = c.send(http::verb::get, "/v1/cluster");
  ASSERT_EQ(cluster.status, 200);
  EXPECT_EQ(cluster.json()["nodes"][0]["host"], "127.0.0.1");
  EXPECT_TRUE(cluster.json()["tokens_per_second"].is_number());

  Reply page = c.send(http::verb::get, "/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.headers[http::field::content_type].find("text/html"), beast::string_view::npos);
  EXPECT_NE(page.body.find("AbortController"), std::string::npos);
  EXPECT_NE(page.body.find("/v1/chat/completions"), std::string::npos);
}

TEST_F(ServerTest, ChatCompletionWholeAnswer) {
  start();
  Client c(port());
  Reply r = c.post("/v1/chat/completions",
                   chat_body("tell me three words", {{"temperature", 0}, {"seed", 7}, {"top_p", 0.5}}));
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.json();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "word-stream-test");
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  // No template in the model: the server's fallback format rendered the prompt.
  GenerationRequest seen = service_->last_request();
  EXPECT_EQ(seen.prompt, "<s>User: tell me three words\nAssistant:");
  EXPECT_TRUE(seen.templated);
  EXPECT_EQ(seen.sampling.temperature, 0.0f);
  EXPECT_EQ(seen.sampling.top_p, 0.5f);
  EXPECT_EQ(seen.sampling.seed, 7u);
  auto pieces = WordStreamTestService::pieces_of(seen.prompt);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], joined(pieces));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["prompt_tokens"], pieces.size());
  EXPECT_EQ(j["usage"]["completion_tokens"], pieces.size());
  EXPECT_EQ(j["usage"]["total_tokens"], 2 * pieces.size());
}

TEST_F(ServerTest, ModelTemplateIsUsed) {
  WordStreamTestOptions o;
  o.chat_template =
      "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% "
      "endif %}";
  start(o);
  Client c(port());
  ASSERT_EQ(c.post("/v1/chat/completions", chat_body("hi there")).status, 200);
  EXPECT_EQ(service_->last_request().prompt, "<|user|>hi there<|assistant|>");
}

TEST_F(ServerTest, CompletionMaxTokensAndStopStrings) {
  start();
  Client c(port());
  Reply r = c.post("/v1/completions",
                   {{"model", "word-stream-test"}, {"prompt", "one two three four five"}, {"max_tokens", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["object"], "text_completion");
  EXPECT_EQ(r.json()["choices"][0]["text"], "one two");
  EXPECT_EQ(r.json()["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r.json()["usage"]["completion_tokens"], 2);
  EXPECT_FALSE(service_->last_request().templated);

  // The stop string spans a piece boundary ("thr" + "ee f"): cut before it, never sent.
  r = c.post("/v1/completions", {{"model", "word-stream-test"},
                                 {"prompt", "one two three four five"},
                                 {"max_tokens", 50},
                                 {"stop", Json::array({"nope", "ee fo"})}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["choices"][0]["text"], "one two thr");
  EXPECT_EQ(r.json()["choices"][0]["finish_reason"], "stop");
  // The default max_tokens of /v1/completions is OpenAI's 16.
  EXPECT_EQ(service_->last_request().max_tokens, 50);
  ASSERT_EQ(c.post("/v1/completions", {{"model", "word-stream-test"}, {"prompt", "x"}}).status, 200);
  EXPECT_EQ(service_->last_request().max_tokens, 16);
}

TEST_F(ServerTest, StreamingChatChunksAsOpenAIClientsParseThem) {
  start();
  Client c(port());
  Reply r =
      c.post("/v1/chat/completions",
             chat_body("stream these words please", {{"stream", true}, {"stream_options", {{"include_usage", true}}}}));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers[http::field::content_type], "text/event-stream; charset=utf-8");
  EXPECT_EQ(r.body.substr(r.body.size() - 14), "data: [DONE]\n\n");
  std::vector<Json> events = sse_events(r.body);
  ASSERT_GE(events.size(), 4u);
  auto pieces = WordStreamTestService::pieces_of(service_->last_request().prompt);
  EXPECT_EQ(events[0]["choices"][0]["delta"]["role"], "assistant");
  std::string content;
  std::string id = events[0]["id"];
  size_t finish_chunks = 0;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    const Json& e = events[i];
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    EXPECT_EQ(e["id"], id);
    EXPECT_EQ(e["model"], "word-stream-test");
    ASSERT_EQ(e["choices"].size(), 1u);
    content += e["choices"][0]["delta"].value("content", "");
    if (!e["choices"][0]["finish_reason"].is_null()) {
      ++finish_chunks;
      EXPECT_EQ(e["choices"][0]["finish_reason"], "stop");
      EXPECT_EQ(i, events.size() - 3) << "finish_reason must come on the last content chunk";
    }
  }
  EXPECT_EQ(finish_chunks, 1u);
  EXPECT_EQ(content, joined(pieces));
  const Json& usage_chunk = events[events.size() - 2];
  EXPECT_TRUE(usage_chunk["choices"].empty());
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], pieces.size());
  EXPECT_EQ(events.back(), "[DONE]");
}

TEST_F(ServerTest, StreamingCompletionAndKeepAliveAfterIt) {
  start();
  Client c(port());
  Reply r =
      c.post("/v1/completions",
             {{"model", "word-stream-test"}, {"prompt", "alpha beta gamma"}, {"stream", true}, {"max_tokens", 2}});
  ASSERT_EQ(r.status, 200);
  std::vector<Json> events = sse_events(r.body);
  std::string text;
  std::string finish;
  for (const auto& e : events) {
    if (e == "[DONE]") continue;
    EXPECT_EQ(e["object"], "text_completion");
    text += e["choices"][0]["text"].get<std::string>();
    if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, "alpha beta");
  EXPECT_EQ(finish, "length");
  // The same connection serves the next request.
  EXPECT_EQ(c.send(http::verb::get, "/health").status, 200);
}

TEST_F(ServerTest, EveryBadRequestGetsItsErrorAndTheServerKeepsServing) {
  ServerOptions o;
  o.max_body_bytes = 4096;
  o.limits.max_tokens_limit = 100;
  start({}, o);
  Client c(port());
  expect_error(c.send(http::verb::post, "/v1/chat/completions", "{not json"), 400, "invalid_json");
  expect_error(c.send(http::verb::post, "/v1/chat/completions", "[1,2]"), 400, "invalid_json");
  expect_error(c.post("/v1/chat/completions", {{"messages", Json::array()}}), 400, "missing_required_parameter",
               "model");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"model", "gpt-4"}})), 404, "model_not_found", "model");
  expect_error(c.post("/v1/chat/completions", {{"model", "word-stream-test"}}), 400, "missing_required_parameter",
               "messages");
  expect_error(
      c.post("/v1/chat/completions", {{"model", "word-stream-test"}, {"messages", Json::array({{{"content", "x"}}})}}),
      400, "missing_required_parameter", "messages[0].role");
  expect_error(c.post("/v1/chat/completions", {{"model", "word-stream-test"},
                                               {"messages", Json::array({{{"role", "wizard"}, {"content", "x"}}})}}),
               400, "invalid_value", "messages[0].role");
  expect_error(c.post("/v1/completions", {{"model", "word-stream-test"}}), 400, "missing_required_parameter", "prompt");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"max_tokens", 101}})), 400, "invalid_value",
               "max_tokens");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"max_tokens", 0}})), 400, "invalid_value", "max_tokens");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"max_tokens", "ten"}})), 400, "invalid_type",
               "max_tokens");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"temperature", 3}})), 400, "invalid_value",
               "temperature");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"stream", "yes"}})), 400, "invalid_type", "stream");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"stop", Json::array({1})}})), 400, "invalid_type",
               "stop");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"n", 2}})), 400, "invalid_value", "n");
  expect_error(c.send(http::verb::get, "/v1/nothing"), 404, "unknown_url");
  expect_error(c.send(http::verb::get, "/v1/chat/completions"), 405, "method_not_allowed");
  // Still the same keep-alive connection, and it still works.
  Reply ok = c.post("/v1/chat/completions", chat_body("still alive"));
  EXPECT_EQ(ok.status, 200) << ok.body;

  // Over the body limit: 413, and the connection is closed.
  Client big(port());
  expect_error(big.post("/v1/chat/completions", chat_body(std::string(5000, 'x'))), 413, "request_too_large");
  Client after(port());
  EXPECT_EQ(after.post("/v1/completions", {{"model", "word-stream-test"}, {"prompt", "fine"}}).status, 200);
}

TEST_F(ServerTest, BearerTokenRequiredOnEveryApiRequest) {
  ServerOptions o;
  o.bearer_token = "s3cret";
  start({}, o);
  Client c(port());
  for (const char* target : {"/health", "/v1/models", "/metrics", "/v1/cluster"}) {
    Reply r = c.send(http::verb::get, target);
    expect_error(r, 401, "invalid_api_key");
    EXPECT_EQ(r.headers[http::field::www_authenticate], "Bearer");
  }
  expect_error(c.post("/v1/chat/completions", chat_body("x")), 401, "invalid_api_key");
  expect_error(c.post("/v1/chat/completions", chat_body("x"), {{"Authorization", "Bearer wrong"}}), 401,
               "invalid_api_key");
  expect_error(c.post("/v1/chat/completions", chat_body("x"), {{"Authorization", "s3cret"}}), 401, "invalid_api_key");
  EXPECT_EQ(c.post("/v1/chat/completions", chat_body("x"), {{"Authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(c.send(http::verb::get, "/health", "", {{"Authorization", "Bearer s3cret"}}).status, 200);
  // The static page holds no data; it asks for the token itself.
  EXPECT_EQ(c.send(http::verb::get, "/").status, 200);
}

TEST_F(ServerTest, FullQueueAnswers429WithRetryAfter) {
  WordStreamTestOptions so;
  so.slots = 1;
  so.max_queued = 1;
  so.step_delay = std::chrono::milliseconds(50);
  start(so);
  // Two long requests occupy the slot and the queue (about 0.5 s each).
  auto long_prompt = chat_body("w w w w w w w w", {{"stream", true}});
  Client a(port()), b(port());
  std::thread ta([&] { a.post("/v1/chat/completions", long_prompt); });
  while (service_->stats().running + service_->stats().queued < 1)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::thread tb([&] { b.post("/v1/chat/completions", long_prompt); });
  while (service_->stats().queued < 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Client c(port());
  Reply r = c.post("/v1/chat/completions", chat_body("one more"));
  expect_error(r, 429, "queue_full");
  EXPECT_EQ(r.headers[http::field::retry_after], "1");
  ta.join();
  tb.join();
  EXPECT_EQ(c.post("/v1/chat/completions", chat_body("now it fits")).status, 200);
}

TEST_F(ServerTest, ClientDisconnectMidStreamCancelsTheRequest) {
  WordStreamTestOptions so;
  so.step_delay = std::chrono::milliseconds(20);
  start(so);
  {
    Client c(port());
    http::request<http::string_body> req{http::verb::post, "/v1/chat/completions", 11};
    req.set(http::field::host, "127.0.0.1");
    // 1000 words at 20 ms each: 20 s if nobody cancels.
    std::string words;
    for (int i = 0; i < 1000; ++i) words += "w ";
    req.body() = chat_body(words, {{"stream", true}}).dump();
    req.prepare_payload();
    http::write(c.stream(), req);
    http::response_parser<http::string_body> parser;
    http::read_header(c.stream(), c.buffer(), parser);
    ASSERT_EQ(parser.get().result_int(), 200u);
    // Read until some content arrived, then hang up.
    while (parser.get().body().find("\"content\":\" w\"") == std::string::npos) {
      ASSERT_FALSE(parser.is_done()) << "the stream ended before any content arrived";
      http::read_some(c.stream(), c.buffer(), parser);
    }
    EXPECT_EQ(service_->cancelled_count(), 0u);
    c.stream().socket().shutdown(tcp::socket::shutdown_both);
    c.stream().close();
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (service_->cancelled_count() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(service_->cancelled_count(), 1u);
  EXPECT_EQ(service_->stats().running, 0u);
  Client c(port());
  Reply metrics = c.send(http::verb::get, "/metrics");
  EXPECT_NE(metrics.body.find("code=\"499\"} 1"), std::string::npos) << metrics.body;
}

TEST_F(ServerTest, CannotListenOnAPortInUse) {
  start();
  WordStreamTestService other;
  ServerOptions o;
  o.port = port();
  HttpServer second(o, other);
  try {
    second.start();
    FAIL() << "a second server bound the same port";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(port())), std::string::npos)
        << e.what();
  }
}

// ------------------------------------------------------------------ raw sockets

int connect_raw(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may close before reading everything (431, 413)
    done += static_cast<size_t>(n);
  }
}

// Everything the server sends until it closes the connection (or 10 s pass).
std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// One request as raw bytes: its answer, the connection closed by the server afterwards.
std::string exchange(uint16_t port, const std::string& request, bool half_close = true) {
  int fd = connect_raw(port);
  EXPECT_GE(fd, 0);
  write_all(fd, request);
  if (half_close) ::shutdown(fd, SHUT_WR);
  std::string out = read_all(fd);
  ::close(fd);
  return out;
}

std::string post_bytes(const std::string& path, const std::string& body, const std::string& extra_headers = "",
                       const std::string& host = "127.0.0.1") {
  return "POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nConnection: close\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

int status_of(const std::string& response) {
  return response.rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(response.c_str() + 9) : 0;
}

TEST_F(ServerTest, OversizedHeadersGet431) {
  start();
  const std::string big = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(1 << 20, 'a') + "\r\n\r\n";
  const std::string answer = exchange(port(), big, false);
  EXPECT_EQ(status_of(answer), 431) << answer.substr(0, 300);
  EXPECT_NE(answer.find("request_header_fields_too_large"), std::string::npos) << answer.substr(0, 300);
  Client c(port());
  EXPECT_EQ(c.send(http::verb::get, "/health").status, 200);
}

TEST_F(ServerTest, HeadIsAnsweredLikeGetWithoutTheBody) {
  start();
  Client c(port());
  const Reply get = c.send(http::verb::get, "/health");
  ASSERT_EQ(get.status, 200);
  // HEAD then GET on one connection: the GET's answer must follow the HEAD's headers at once.
  const std::string both = exchange(port(),
                                    "HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                                    "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(status_of(both), 200) << both;
  const size_t head_end = both.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  const std::string head = both.substr(0, head_end);
  EXPECT_NE(head.find("Content-Length: " + std::to_string(get.body.size())), std::string::npos) << head;
  EXPECT_EQ(both.substr(head_end + 4, 9), "HTTP/1.1 ") << both;
  EXPECT_EQ(both.substr(both.size() - get.body.size()), get.body);
  const std::string page = exchange(port(), "HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(status_of(page), 200);
  EXPECT_EQ(page.find("<html"), std::string::npos) << "HEAD / sent the page";
}

TEST_F(ServerTest, BearerSchemeIsCaseInsensitive) {
  ServerOptions o;
  o.bearer_token = "s3cret";
  start({}, o);
  Client c(port());
  for (const char* value : {"Bearer s3cret", "bearer s3cret", "BEARER s3cret", "bEaReR   s3cret", "Bearer s3cret  "}) {
    EXPECT_EQ(c.send(http::verb::get, "/v1/models", "", {{"Authorization", value}}).status, 200) << value;
  }
  for (const char* value : {"Bearer s3cre", "Basic s3cret", "Bearers3cret", "s3cret", "Bearer", "Bearer  S3CRET"}) {
    expect_error(c.send(http::verb::get, "/v1/models", "", {{"Authorization", value}}), 401, "invalid_api_key");
  }
}

TEST_F(ServerTest, HealthIsOpenToProbesOnlyWithTheOption) {
  ServerOptions o;
  o.bearer_token = "s3cret";
  start({}, o);
  {
    Client c(port());
    expect_error(c.send(http::verb::get, "/health"), 401, "invalid_api_key");
  }
  server_->stop();
  o.health_open = true;
  start({}, o);
  Client c(port());
  EXPECT_EQ(c.send(http::verb::get, "/health").status, 200);
  EXPECT_EQ(c.send(http::verb::head, "/health").status, 200);
  for (const char* target : {"/v1/models", "/metrics", "/v1/cluster"}) {
    expect_error(c.send(http::verb::get, target), 401, "invalid_api_key");
  }
  expect_error(c.post("/v1/chat/completions", chat_body("x")), 401, "invalid_api_key");
}

TEST_F(ServerTest, AClientThatHalfClosesAfterItsRequestGetsItsAnswer) {
  start();
  const std::string whole =
      exchange(port(), post_bytes("/v1/chat/completions", chat_body("half closed client").dump()));
  ASSERT_EQ(status_of(whole), 200) << whole;
  EXPECT_NE(whole.find("half closed client Assistant:\""), std::string::npos) << whole;
  const std::string streamed = exchange(
      port(),
      post_bytes("/v1/completions", Json{{"model", "word-stream-test"}, {"prompt", "a b c"}, {"stream", true}}.dump()));
  ASSERT_EQ(status_of(streamed), 200) << streamed;
  EXPECT_NE(streamed.find("data: [DONE]"), std::string::npos) << streamed;
  EXPECT_EQ(service_->cancelled_count(), 0u);
}

TEST_F(ServerTest, AClientThatClosesWhileWaitingForAWholeAnswerCancelsIt) {
  WordStreamTestOptions so;
  so.step_delay = std::chrono::milliseconds(20);
  start(so);
  std::string words;
  for (int i = 0; i < 1000; ++i) words += "w ";  // 20 s if nobody cancels
  int fd = connect_raw(port());
  write_all(fd, post_bytes("/v1/chat/completions", chat_body(words).dump()));
  while (service_->stats().running == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::close(fd);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (service_->cancelled_count() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(service_->cancelled_count(), 1u);
}

// Fork a server whose process may open only a few more descriptors, fill them with
// connections, and see that it waits instead of spinning, and serves again once they close.
TEST(ServerAccept, BacksOffWhenOutOfDescriptorsAndRecovers) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    // New descriptors take the lowest free numbers: leave room for about ten beyond those in use.
    int in_use = 0;
    for (int fd = 0; fd < 64; ++fd) {
      if (::fcntl(fd, F_GETFD) != -1) ++in_use;
    }
    rlimit lim{static_cast<rlim_t>(in_use + 10), static_cast<rlim_t>(in_use + 10)};
    ::setrlimit(RLIMIT_NOFILE, &lim);
    WordStreamTestService service;
    ServerOptions o;
    o.port = 0;
    HttpServer server(o, service);
    server.start();
    uint16_t p = server.port();
    if (::write(ready[1], &p, sizeof p) != sizeof p) ::_exit(3);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  uint16_t p = 0;
  ASSERT_EQ(::read(ready[0], &p, sizeof p), static_cast<ssize_t>(sizeof p));
  auto cpu_ticks = [child] {
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string field;
    long ticks = 0;
    for (int i = 1; i <= 15 && stat >> field; ++i) {
      if (i == 14 || i == 15) ticks += std::stol(field);
    }
    return ticks;
  };
  std::vector<int> fds;
  for (int i = 0; i < 40; ++i) {
    int fd = connect_raw(p);
    if (fd >= 0) fds.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const long before = cpu_ticks();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long used = cpu_ticks() - before;
  const long hz = ::sysconf(_SC_CLK_TCK);
  std::printf("accept test: the server used %ld of %ld ticks in 1 s, %zu connections\n", used, hz, fds.size());
  EXPECT_LT(used, hz / 5) << "the server used " << used << " of " << hz << " ticks in 1 s with its descriptors full";
  for (int fd : fds) ::close(fd);
  const std::string answer = exchange(p, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_of(answer), 200) << answer;
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

// ------------------------------------------------------------------ Host / Origin / CORS

TEST_F(ServerTest, ATokenlessLoopbackServerRefusesOtherHostsAndOrigins) {
  ServerOptions o;
  o.cors_origins = {"https://app.example"};
  start({}, o);
  const std::string p = std::to_string(port());
  const std::string body = chat_body("x").dump();
  auto with = [&](const std::string& host, const std::string& headers = "") {
    return exchange(port(), post_bytes("/v1/chat/completions", body, headers, host));
  };
  for (const std::string& host :
       std::vector<std::string>{"127.0.0.1:" + p, "localhost:" + p, "[::1]:" + p, "LOCALHOST:" + p, "127.0.0.1"}) {
    EXPECT_EQ(status_of(with(host)), 200) << host;
  }
  for (const std::string& host :
       std::vector<std::string>{"evil.example:" + p, "evil.example", "127.0.0.1:1", "localhost.:" + p, "127.0.0.2:" + p,
                                "localhost:" + p + "x", ""}) {
    const std::string r = with(host);
    EXPECT_EQ(status_of(r), 403) << host << "\n" << r;
    if (!host.empty()) {
      EXPECT_NE(r.find("host_not_allowed"), std::string::npos) << r;
    }
  }
  // DNS rebinding on a GET too.
  EXPECT_EQ(status_of(exchange(port(), "GET /v1/models HTTP/1.1\r\nHost: rebind.example:" + p + "\r\n\r\n")), 403);
  // Origins: its own page, an allowed one; any other site is refused.
  EXPECT_EQ(status_of(with("127.0.0.1:" + p, "Origin: http://127.0.0.1:" + p + "\r\n")), 200);
  EXPECT_EQ(status_of(with("localhost:" + p, "Origin: http://localhost:" + p + "\r\n")), 200);
  const std::string allowed = with("127.0.0.1:" + p, "Origin: https://app.example\r\n");
  EXPECT_EQ(status_of(allowed), 200);
  EXPECT_NE(allowed.find("Access-Control-Allow-Origin: https://app.example"), std::string::npos) << allowed;
  for (const std::string& origin :
       std::vector<std::string>{"https://evil.example", "null", "http://127.0.0.1:1", "http://evil.example:" + p}) {
    const std::string r = with("127.0.0.1:" + p, "Origin: " + origin + "\r\n");
    EXPECT_EQ(status_of(r), 403) << origin;
    EXPECT_NE(r.find("origin_not_allowed"), std::string::npos) << r;
  }
  // The preflight of an allowed origin, and of another one.
  const std::string pre =
      exchange(port(), "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:" + p +
                           "\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n"
                           "Access-Control-Request-Headers: content-type, x-stainless-os\r\n\r\n");
  EXPECT_EQ(status_of(pre), 204) << pre;
  EXPECT_NE(pre.find("Access-Control-Allow-Origin: https://app.example"), std::string::npos) << pre;
  EXPECT_NE(pre.find("Access-Control-Allow-Methods: GET, HEAD, POST, OPTIONS"), std::string::npos) << pre;
  EXPECT_NE(pre.find("Access-Control-Allow-Headers: content-type, x-stainless-os"), std::string::npos) << pre;
  const std::string bad_pre =
      exchange(port(), "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:" + p +
                           "\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: POST\r\n\r\n");
  EXPECT_EQ(status_of(bad_pre), 403) << bad_pre;
  EXPECT_EQ(bad_pre.find("Access-Control-Allow-Origin"), std::string::npos) << bad_pre;
  // A streamed answer to an allowed origin carries the header too.
  const std::string streamed = with("127.0.0.1:" + p, "Origin: https://app.example\r\n");
  EXPECT_NE(streamed.find("Access-Control-Allow-Origin"), std::string::npos);
}

TEST_F(ServerTest, WithATokenOtherHostsAreServedAndCorsStillAppliesToPreflights) {
  ServerOptions o;
  o.bearer_token = "s3cret";
  o.cors_origins = {"https://app.example"};
  start({}, o);
  const std::string body = chat_body("x").dump();
  EXPECT_EQ(status_of(exchange(port(), post_bytes("/v1/chat/completions", body, "Authorization: Bearer s3cret\r\n",
                                                  "my-proxy.example"))),
            200);
  const std::string pre = exchange(port(),
                                   "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n"
                                   "Access-Control-Request-Method: POST\r\n\r\n");
  EXPECT_EQ(status_of(pre), 204) << pre;
  const std::string bad =
      exchange(port(),
               "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n"
               "Access-Control-Request-Method: POST\r\n\r\n");
  EXPECT_EQ(status_of(bad), 403) << bad;
}

}  // namespace
}  // namespace clusterctl::server
