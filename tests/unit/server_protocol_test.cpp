// Stop strings across piece boundaries and UTF-8 reassembly of streamed pieces.
#include <gtest/gtest.h>

#include "worker/server/openai_protocol.h"
#include "worker/server/stop_matcher.h"

namespace clusterctl::server {
namespace {

std::string feed_all(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += m.feed(p);
  return out + m.flush();
}

TEST(StopMatcher, NoStopsPassesEverythingAtOnce) {
  StopMatcher m({});
  EXPECT_EQ(m.feed("abc"), "abc");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, HoldsBackAPossibleStartAndReleasesItWhenItIsNot) {
  StopMatcher m({"</s>"});
  EXPECT_EQ(m.feed("hello <"), "hello ");
  EXPECT_EQ(m.feed("/"), "");
  EXPECT_EQ(m.feed("x"), "</x");
  EXPECT_FALSE(m.matched());
  EXPECT_EQ(m.feed(" end<"), " end");
  EXPECT_EQ(m.flush(), "<");
}

TEST(StopMatcher, MatchAcrossPiecesCutsBeforeTheStop) {
  StopMatcher m({"STOP", "\nUser:"});
  EXPECT_EQ(feed_all(m, {"answer", "\nUs", "er: more", "text"}), "answer");
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(m.feed("later"), "");
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  StopMatcher m({"cd", "b"});
  EXPECT_EQ(m.feed("abcd"), "a");
  EXPECT_TRUE(m.matched());
}

TEST(Utf8Joiner, CompletesCharactersSplitOverPieces) {
  Utf8Joiner j;
  const std::string euro = "\xE2\x82\xAC";  // 3 bytes
  const std::string smile = "\xF0\x9F\x98\x80";  // 4 bytes
  EXPECT_EQ(j.feed("a\xE2"), "a");
  EXPECT_EQ(j.feed("\x82"), "");
  EXPECT_EQ(j.feed("\xAC" "b"), euro + "b");
  EXPECT_EQ(j.feed(smile.substr(0, 1)), "");
  EXPECT_EQ(j.feed(smile.substr(1, 2)), "");
  EXPECT_EQ(j.feed(smile.substr(3)), smile);
  EXPECT_EQ(j.flush(), "");
}

TEST(OpenAIProtocol, SseEventReplacesInvalidUtf8InsteadOfThrowing) {
  std::string event = sse_event(Json{{"text", std::string("bad \xFF byte")}});
  EXPECT_EQ(event.rfind("data: {", 0), 0u);
  EXPECT_EQ(event.substr(event.size() - 2), "\n\n");
  EXPECT_NE(event.find("\xEF\xBF\xBD"), std::string::npos);  // U+FFFD
}

TEST(OpenAIProtocol, ErrorObjectHasTheFourOpenAIFields) {
  Json body = ApiError(404, "no such model", "invalid_request_error", "model", "model_not_found").body();
  EXPECT_EQ(body.dump(), R"({"error":{"message":"no such model","type":"invalid_request_error","param":"model","code":"model_not_found"}})");
  EXPECT_EQ(invalid_request("bad").body()["error"]["param"], nullptr);
}

}  // namespace
}  // namespace clusterctl::server
