// The HTTP layer over real sockets on 127.0.0.1, with Beast as the client and the
// test-only word-streaming service behind it (tests/unit/server_test_word_service.h).
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include "tests/unit/server_test_word_service.h"
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
    http::read(stream_, buffer_, parser);
    auto res = parser.release();
    Reply r;
    r.status = static_cast<int>(res.result_int());
    r.headers = res.base();
    r.body = res.body();
    return r;
  }
  Reply post(const std::string& target, const Json& body, const std::vector<std::pair<std::string, std::string>>& h = {}) {
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
  Reply r = c.post("/v1/chat/completions", chat_body("tell me three words", {{"temperature", 0}, {"seed", 7}, {"top_p", 0.5}}));
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
  o.chat_template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
  start(o);
  Client c(port());
  ASSERT_EQ(c.post("/v1/chat/completions", chat_body("hi there")).status, 200);
  EXPECT_EQ(service_->last_request().prompt, "<|user|>hi there<|assistant|>");
}

TEST_F(ServerTest, CompletionMaxTokensAndStopStrings) {
  start();
  Client c(port());
  Reply r = c.post("/v1/completions", {{"model", "word-stream-test"}, {"prompt", "one two three four five"}, {"max_tokens", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["object"], "text_completion");
  EXPECT_EQ(r.json()["choices"][0]["text"], "one two");
  EXPECT_EQ(r.json()["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r.json()["usage"]["completion_tokens"], 2);
  EXPECT_FALSE(service_->last_request().templated);

  // The stop string spans a piece boundary ("thr" + "ee f"): cut before it, never sent.
  r = c.post("/v1/completions", {{"model", "word-stream-test"}, {"prompt", "one two three four five"},
                                 {"max_tokens", 50}, {"stop", Json::array({"nope", "ee fo"})}});
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
  Reply r = c.post("/v1/chat/completions",
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
  Reply r = c.post("/v1/completions", {{"model", "word-stream-test"}, {"prompt", "alpha beta gamma"}, {"stream", true}, {"max_tokens", 2}});
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
  expect_error(c.post("/v1/chat/completions", {{"messages", Json::array()}}), 400, "missing_required_parameter", "model");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"model", "gpt-4"}})), 404, "model_not_found", "model");
  expect_error(c.post("/v1/chat/completions", {{"model", "word-stream-test"}}), 400, "missing_required_parameter", "messages");
  expect_error(c.post("/v1/chat/completions", {{"model", "word-stream-test"}, {"messages", Json::array({{{"content", "x"}}})}}),
               400, "missing_required_parameter", "messages[0].role");
  expect_error(c.post("/v1/chat/completions", {{"model", "word-stream-test"}, {"messages", Json::array({{{"role", "wizard"}, {"content", "x"}}})}}),
               400, "invalid_value", "messages[0].role");
  expect_error(c.post("/v1/completions", {{"model", "word-stream-test"}}), 400, "missing_required_parameter", "prompt");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"max_tokens", 101}})), 400, "invalid_value", "max_tokens");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"max_tokens", 0}})), 400, "invalid_value", "max_tokens");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"max_tokens", "ten"}})), 400, "invalid_type", "max_tokens");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"temperature", 3}})), 400, "invalid_value", "temperature");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"stream", "yes"}})), 400, "invalid_type", "stream");
  expect_error(c.post("/v1/chat/completions", chat_body("x", {{"stop", Json::array({1})}})), 400, "invalid_type", "stop");
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
  expect_error(c.post("/v1/chat/completions", chat_body("x"), {{"Authorization", "Bearer wrong"}}), 401, "invalid_api_key");
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
  while (service_->stats().running + service_->stats().queued < 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
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
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(port())), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace clusterctl::server
