// The controller's HTTP client pieces that need no server: URL parsing, the server-sent-event
// splitter (events cut at arbitrary byte boundaries, as TCP delivers them) and error bodies.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "controller/http/http_client.h"
#include "controller/http/sse_parser.h"
#include "controller/http/url.h"
#include "worker/common/error.h"

namespace clusterctl::http {
namespace {

TEST(Url, ParsesHostPortAndPrefix) {
  Url u = Url::parse("http://10.0.0.2:8080");
  EXPECT_EQ(u.host, "10.0.0.2");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.base_path, "");
  EXPECT_EQ(u.str(), "http://10.0.0.2:8080");
  Url p = Url::parse("http://gpu-box/api/");
  EXPECT_EQ(p.host, "gpu-box");
  EXPECT_EQ(p.port, 80);
  EXPECT_EQ(p.base_path, "/api");
  Url v6 = Url::parse("http://[::1]:9000");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.str(), "http://[::1]:9000");
  EXPECT_EQ(Url::parse("127.0.0.1:81").port, 81);  // scheme optional
}

TEST(Url, RejectsWhatItCannotServe) {
  EXPECT_THROW(Url::parse("https://x:1"), Error);
  EXPECT_THROW(Url::parse("ftp://x"), Error);
  EXPECT_THROW(Url::parse("http://:80"), Error);
  EXPECT_THROW(Url::parse("http://h:0"), Error);
  EXPECT_THROW(Url::parse("http://h:70000"), Error);
  EXPECT_THROW(Url::parse("http://h:8o"), Error);
}

std::vector<std::string> split_events(const std::string& stream, size_t piece) {
  std::vector<std::string> got;
  SseParser p([&](const std::string& d) {
    got.push_back(d);
    return true;
  });
  for (size_t i = 0; i < stream.size(); i += piece) p.feed(std::string_view(stream).substr(i, piece));
  p.finish();
  return got;
}

TEST(SseParser, SameEventsWhateverTheCutPoints) {
  const std::string stream =
      ": keep-alive\n\ndata: {\"a\":1}\n\nevent: x\r\ndata: two\r\ndata: lines\r\n\r\ndata:[DONE]\n\n";
  const std::vector<std::string> want = {"{\"a\":1}", "two\nlines", "[DONE]"};
  for (size_t piece : {1, 2, 3, 7, 1000}) EXPECT_EQ(split_events(stream, piece), want) << "piece " << piece;
}

TEST(SseParser, DeliversALastEventWithoutItsBlankLine) {
  EXPECT_EQ(split_events("data: x\n\ndata: y", 4), (std::vector<std::string>{"x", "y"}));
}

TEST(SseParser, StopsWhenAsked) {
  int calls = 0;
  SseParser p([&](const std::string&) { return ++calls < 1; });
  EXPECT_FALSE(p.feed("data: 1\n\ndata: 2\n\n"));
  EXPECT_FALSE(p.feed("data: 3\n\n"));
  EXPECT_EQ(calls, 1);
}

TEST(ErrorMessage, TakesOpenAiErrorsElseTheBody) {
  EXPECT_EQ(error_message({400, R"({"error":{"message":"'max_tokens' too big","type":"invalid_request_error"}})"}),
            "'max_tokens' too big");
  EXPECT_EQ(error_message({500, "backend exploded\n"}), "backend exploded");
  EXPECT_EQ(error_message({404, ""}), "Not Found");
}

}  // namespace
}  // namespace clusterctl::http
