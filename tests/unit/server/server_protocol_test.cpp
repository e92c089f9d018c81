// Stop strings across piece boundaries, UTF-8 reassembly of streamed pieces, and request
// validation: every body is either a request inside the documented ranges or a 400/404 ApiError.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

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
  const std::string euro = "\xE2\x82\xAC";       // 3 bytes
  const std::string smile = "\xF0\x9F\x98\x80";  // 4 bytes
  EXPECT_EQ(j.feed("a\xE2"), "a");
  EXPECT_EQ(j.feed("\x82"), "");
  EXPECT_EQ(j.feed("\xAC"
                   "b"),
            euro + "b");
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
  EXPECT_EQ(
      body.dump(),
      R"({"error":{"message":"no such model","type":"invalid_request_error","param":"model","code":"model_not_found"}})");
  EXPECT_EQ(invalid_request("bad").body()["error"]["param"], nullptr);
}

// ------------------------------------------------------------------ request validation

const ModelInfo kModel{"m", std::nullopt, "<s>", "</s>", 256, "llama", 0};

ApiRequest parse(Endpoint e, const std::string& body, ProtocolLimits limits = {}) {
  const chat::ChatTemplate fallback(std::nullopt, "<s>", "</s>");
  return parse_api_request(e, body, kModel, fallback, limits);
}

// The body must be refused with `status`, `code` and `param` (any other exception fails the test).
void expect_refused(Endpoint e, const std::string& body, const std::string& code, const std::string& param,
                    int status = 400) {
  SCOPED_TRACE(body.substr(0, 200));
  try {
    parse(e, body);
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& err) {
    EXPECT_EQ(err.status(), status) << err.what();
    Json j = err.body();
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_EQ(j["error"]["code"], code) << err.what();
    if (param.empty()) {
      EXPECT_TRUE(j["error"]["param"].is_null()) << err.what();
    } else {
      EXPECT_EQ(j["error"]["param"], param) << err.what();
    }
    EXPECT_FALSE(std::string(err.what()).empty());
  }
}

std::string chat_with(const std::string& extra) {
  return R"({"model":"m","messages":[{"role":"user","content":"hi"}])" + (extra.empty() ? "" : "," + extra) + "}";
}
std::string completion_with(const std::string& extra) {
  return R"({"model":"m","prompt":"hi")" + (extra.empty() ? "" : "," + extra) + "}";
}

TEST(RequestValidation, OutOfRangeNumbersAnywhereAreA400) {
  const Endpoint c = Endpoint::chat_completions;
  expect_refused(c, chat_with(R"("max_tokens":1e300)"), "invalid_value", "max_tokens");
  expect_refused(c, chat_with(R"("max_tokens":2.5)"), "invalid_type", "max_tokens");
  expect_refused(c, chat_with(R"("max_tokens":1e400)"), "invalid_value", "max_tokens");
  expect_refused(c, chat_with(R"("max_tokens":-1e400)"), "invalid_value", "max_tokens");
  expect_refused(c, chat_with(R"("max_tokens":99999999999999999999999999)"), "invalid_value", "max_tokens");
  expect_refused(c, chat_with(R"("max_tokens":18446744073709551615)"), "invalid_value", "max_tokens");
  expect_refused(c, chat_with(R"("temperature":1e999)"), "invalid_value", "temperature");
  expect_refused(c, chat_with(R"("temperature":-1)"), "invalid_value", "temperature");
  expect_refused(c, chat_with(R"("top_p":2)"), "invalid_value", "top_p");
  expect_refused(c, chat_with(R"("n":0)"), "invalid_value", "n");
  expect_refused(c, chat_with(R"("n":1e400)"), "invalid_value", "n");
  expect_refused(c, chat_with(R"("seed":1e400)"), "invalid_value", "seed");
  expect_refused(c, chat_with(R"("seed":1.5)"), "invalid_type", "seed");
  // A field the server ignores still may not carry a number it cannot parse.
  expect_refused(c, chat_with(R"("frequency_penalty":1e400)"), "invalid_value", "frequency_penalty");
  expect_refused(c, chat_with(R"("metadata":{"x":[1e400]})"), "invalid_value", "metadata");
}

TEST(RequestValidation, WrongTypesInOptionalFieldsAreA400) {
  const Endpoint c = Endpoint::chat_completions;
  expect_refused(c, chat_with(R"("stop":5)"), "invalid_type", "stop");
  expect_refused(c, chat_with(R"("stop":[1])"), "invalid_type", "stop");
  expect_refused(c, chat_with(R"("stream":"yes")"), "invalid_type", "stream");
  expect_refused(c, chat_with(R"("stream_options":{"include_usage":"yes"})"), "invalid_type",
                 "stream_options.include_usage");
  expect_refused(c, chat_with(R"("stream_options":[])"), "invalid_type", "stream_options");
  expect_refused(c, chat_with(R"("return_token_ids":1)"), "invalid_type", "return_token_ids");
  expect_refused(c, chat_with(R"("cache_prompt":"no")"), "invalid_type", "cache_prompt");
  expect_refused(Endpoint::completions, R"({"model":"m","prompt":"x","cache_prompt":0})", "invalid_type",
                 "cache_prompt");
  expect_refused(c, chat_with(R"("temperature":"hot")"), "invalid_type", "temperature");
  expect_refused(c, chat_with(R"("temperature":true)"), "invalid_type", "temperature");
  expect_refused(c, chat_with(R"("tools":"all")"), "invalid_type", "tools");
  expect_refused(c, R"({"model":"m","messages":[{"role":5}]})", "invalid_type", "messages[0].role");
  expect_refused(c, R"({"model":"m","messages":[{"role":"user","content":5}]})", "invalid_type", "messages[0].content");
  expect_refused(c, R"({"model":"m","messages":[{"role":"user","content":[5]}]})", "invalid_type",
                 "messages[0].content[0]");
  expect_refused(c, R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":5}]}]})",
                 "invalid_type", "messages[0].content[0].text");
  expect_refused(c, R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})",
                 "invalid_value", "messages[0].content[0].type");
  expect_refused(c, R"({"model":"m","messages":"hi"})", "invalid_type", "messages");
  expect_refused(c, R"({"model":5,"messages":[]})", "invalid_type", "model");
  expect_refused(Endpoint::completions, R"({"model":"m","prompt":5})", "invalid_type", "prompt");
  expect_refused(Endpoint::completions, R"({"model":"m","prompt":[5]})", "invalid_type", "prompt");
}

TEST(RequestValidation, DeepNestingIsA400NotAStackOverflow) {
  const Endpoint c = Endpoint::chat_completions;
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  expect_refused(c, chat_with(R"("tools":)" + deep), "invalid_json", "");
  expect_refused(c, R"({"model":"m","messages":[{"role":"user","content":"x","extra":)" + deep + "}]}", "invalid_json",
                 "");
  const std::string deep_obj = [] {
    std::string s;
    for (int i = 0; i < 100000; ++i) s += R"({"a":)";
    s += "1";
    s += std::string(100000, '}');
    return s;
  }();
  expect_refused(c, chat_with(R"("metadata":)" + deep_obj), "invalid_json", "");
  // Brackets inside strings are text, not nesting.
  EXPECT_NO_THROW(
      parse(c, R"({"model":"m","messages":[{"role":"user","content":")" + std::string(5000, '[') + R"("}]})"));
}

TEST(RequestValidation, StopStringsAreBounded) {
  const Endpoint c = Endpoint::chat_completions;
  expect_refused(c, chat_with(R"("stop":["a","b","c","d","e"])"), "invalid_value", "stop");
  std::string huge = "[";
  for (int i = 0; i < 10000; ++i) huge += std::string(i ? "," : "") + "\"s\"";
  expect_refused(c, chat_with(R"("stop":)" + huge + "]"), "invalid_value", "stop");
  expect_refused(c, chat_with(R"("stop":")" + std::string(kMaxStopBytes + 1, 'x') + "\""), "invalid_value", "stop");
  EXPECT_NO_THROW(parse(c, chat_with(R"("stop":")" + std::string(kMaxStopBytes, 'x') + "\"")));
}

TEST(RequestValidation, EveryDocumentedBoundIsAccepted) {
  ProtocolLimits limits;
  limits.max_tokens_limit = 4096;
  for (Endpoint e : {Endpoint::chat_completions, Endpoint::completions}) {
    auto with = [&](const std::string& x) {
      return e == Endpoint::chat_completions ? chat_with(x) : completion_with(x);
    };
    ApiRequest lo = parse(e, with(R"("max_tokens":1,"temperature":0,"top_p":0,"seed":0,"n":1)"), limits);
    EXPECT_EQ(lo.generation.max_tokens, 1);
    EXPECT_EQ(lo.generation.sampling.temperature, 0.0f);
    EXPECT_EQ(lo.generation.sampling.top_p, 0.0f);
    ApiRequest hi =
        parse(e, with(R"("max_tokens":4096,"temperature":2,"top_p":1,"seed":18446744073709551615)"), limits);
    EXPECT_EQ(hi.generation.max_tokens, 4096);
    EXPECT_EQ(hi.generation.sampling.temperature, 2.0f);
    EXPECT_EQ(*hi.generation.sampling.seed, 18446744073709551615ull);
    ApiRequest neg = parse(e, with(R"("seed":-1,"max_completion_tokens":7,"stop":["a","b","c","d"])"), limits);
    EXPECT_EQ(neg.generation.max_tokens, 7);
    EXPECT_EQ(neg.generation.stop.size() - (e == Endpoint::chat_completions ? 1u : 0u), 4u);
  }
}

TEST(RequestValidation, TheRangeTableIsInTheDocs) {
  std::ifstream in(std::string(CLUSTERCTL_SOURCE_DIR) + "/docs/api.md");
  ASSERT_TRUE(in) << "docs/api.md";
  std::stringstream text;
  text << in.rdbuf();
  const std::string table = request_range_table_markdown(ProtocolLimits{});
  EXPECT_NE(text.str().find(table), std::string::npos) << "docs/api.md must hold the range table as generated:\n"
                                                       << table;
}

}  // namespace
}  // namespace clusterctl::server
