// The structured-output matcher: which texts are valid starts and whole values of JSON and of
// compiled schemas, and the token constraint built on it.
#include "worker/sampling/json_matcher.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace clusterctl::sampling {
namespace {

using Node = JsonSchemaNode;

// Whether `text` is a valid start (alive) and a whole value (complete) under `schema`.
struct Verdict {
  bool alive;
  bool complete;
};
Verdict check(const std::shared_ptr<const JsonSchema>& schema, const std::string& text) {
  JsonMatcher m(schema);
  const bool alive = m.feed(text);
  return {alive, alive && m.complete()};
}
bool whole(const std::shared_ptr<const JsonSchema>& schema, const std::string& text) {
  return check(schema, text).complete;
}
bool start(const std::shared_ptr<const JsonSchema>& schema, const std::string& text) {
  return check(schema, text).alive;
}

std::shared_ptr<const JsonSchema> any_value() {
  auto s = std::make_shared<JsonSchema>();
  s->nodes.emplace_back();
  return s;
}

TEST(JsonMatcher, JsonObjectModeTakesAnyObject) {
  std::shared_ptr<const JsonSchema> object_only;  // null: response_format json_object
  EXPECT_TRUE(whole(object_only, R"({"a": [1, -2.5e+3, true, null, "x\u00e9\n", {}], "b": {"c": false}})"));
  EXPECT_FALSE(start(object_only, " {}"));  // the answer starts with the value
  EXPECT_TRUE(start(object_only, R"({"a": [1, 2)"));
  EXPECT_FALSE(whole(object_only, R"({"a": [1, 2)"));
  EXPECT_FALSE(start(object_only, "[1]"));           // the top level must be an object
  EXPECT_FALSE(start(object_only, R"({"a": 01})"));  // no leading zeros
  EXPECT_FALSE(start(object_only, R"({"a": 1,})"));  // no trailing comma
  EXPECT_FALSE(start(object_only, R"({"a" 1})"));
  EXPECT_FALSE(start(object_only, "{} x"));               // nothing after the value
  EXPECT_FALSE(start(object_only, "{\"a\": \"x\ny\"}"));  // raw control characters in strings
  EXPECT_FALSE(start(object_only, R"({"a": "\q"})"));
  EXPECT_FALSE(start(object_only, "{\"a\": \"\xff\"}"));  // invalid UTF-8
  EXPECT_TRUE(whole(object_only, "{\"a\": \"\xc3\xa9\"}"));
  EXPECT_TRUE(whole(object_only, "{\"a\": \"\xe2\x82\xac\xf0\x9f\x98\x80\"}"));
  EXPECT_FALSE(start(object_only, "{\"a\": \"\xe0\x80\x80"));  // overlong
  EXPECT_FALSE(start(object_only, "{\"a\": \"\xed\xa0\x80"));  // a surrogate
  EXPECT_FALSE(start(object_only, "{\"a\": \"\xf4\x90\x80"));  // past U+10FFFF
}

TEST(JsonMatcher, TopLevelNumbersEndOnlyWhenComplete) {
  auto any = any_value();
  EXPECT_TRUE(whole(any, "12"));
  EXPECT_TRUE(whole(any, "-0.5E-7"));
  EXPECT_TRUE(start(any, "-"));
  EXPECT_FALSE(whole(any, "-"));
  EXPECT_FALSE(whole(any, "1."));
  EXPECT_FALSE(whole(any, "1e"));
  EXPECT_FALSE(start(any, std::string(kJsonMaxNumberBytes + 1, '1')));
}

TEST(JsonMatcher, WhitespaceRunsAndDepthAreBounded) {
  auto any = any_value();
  EXPECT_TRUE(start(any, "[" + std::string(kJsonMaxWhitespaceRun, ' ')));
  EXPECT_FALSE(start(any, "[" + std::string(kJsonMaxWhitespaceRun + 1, ' ')));
  EXPECT_TRUE(start(any, "[\n  1,\n  2"));
  EXPECT_FALSE(start(any, "[\n\n"));  // one newline per run
  EXPECT_TRUE(start(any, std::string(kJsonMaxDepth, '[')));
  EXPECT_FALSE(start(any, std::string(kJsonMaxDepth + 1, '[')));
}

// {"type":"object","properties":{"name":{"type":"string","maxLength":3},"age":{"type":"integer"},
//  "tags":{"type":"array","items":{"enum":["a","bc"]},"minItems":1,"maxItems":2}},
//  "required":["name","tags"],"additionalProperties":false}
std::shared_ptr<const JsonSchema> person() {
  auto s = std::make_shared<JsonSchema>();
  s->nodes.resize(5);
  Node& root = s->nodes[0];
  root.types = Node::kObject;
  root.property_names = {"name", "age", "tags"};
  root.property_nodes = {1, 2, 3};
  root.required = 0b101;
  root.additional_allowed = false;
  s->nodes[1].types = Node::kString;
  s->nodes[1].max_length = 3;
  s->nodes[2].types = Node::kInteger;
  s->nodes[3].types = Node::kArray;
  s->nodes[3].items_node = 4;
  s->nodes[3].min_items = 1;
  s->nodes[3].max_items = 2;
  s->nodes[4].literals = {R"("a")", R"("bc")"};
  return s;
}

TEST(JsonMatcher, SchemaObjectsFollowPropertiesRequiredAndAdditional) {
  auto s = person();
  EXPECT_TRUE(whole(s, R"({"name": "Bo", "tags": ["a"]})"));
  EXPECT_TRUE(whole(s, R"({"tags": ["bc", "a"], "age": -3, "name": "Ann"})"));
  EXPECT_FALSE(whole(s, R"({"name": "Bo"})"));         // tags is required
  EXPECT_FALSE(start(s, R"({"name": "Bo"})"));         // ... so '}' cannot come yet
  EXPECT_FALSE(start(s, R"({"nick")"));                // no additional keys
  EXPECT_FALSE(start(s, R"({"name": "Bo", "name")"));  // no duplicate keys
  EXPECT_FALSE(start(s, R"({"name": "Boby")"));        // maxLength 3
  EXPECT_FALSE(start(s, R"({"age": 1.5)"));            // integer
  EXPECT_FALSE(start(s, R"({"tags": []")"));           // minItems 1
  EXPECT_FALSE(start(s, R"({"tags": ["a", "a", )"));   // maxItems 2
  EXPECT_FALSE(start(s, R"({"tags": ["b"]")"));        // enum
  EXPECT_TRUE(start(s, R"({"tags": ["b)"));
  EXPECT_FALSE(start(s, R"({"name": 5)"));  // type
}

TEST(JsonMatcher, AnyOfFollowsEveryAlternative) {
  // {"anyOf": [{"type":"string","minLength":2}, {"type":"array","items":{"type":"null"}}, {"const": 12}]}
  auto s = std::make_shared<JsonSchema>();
  s->nodes.resize(5);
  s->nodes[0].any_of = {1, 2, 3};
  s->nodes[1].types = Node::kString;
  s->nodes[1].min_length = 2;
  s->nodes[2].types = Node::kArray;
  s->nodes[2].items_node = 4;
  s->nodes[4].types = Node::kNull;
  s->nodes[3].literals = {"12"};
  EXPECT_TRUE(whole(s, R"("ab")"));
  EXPECT_FALSE(start(s, R"("a")"));
  EXPECT_TRUE(whole(s, "[null, null]"));
  EXPECT_FALSE(start(s, "[1"));
  EXPECT_TRUE(whole(s, "12"));
  EXPECT_FALSE(whole(s, "1"));
  EXPECT_FALSE(start(s, "13"));
}

TEST(JsonMatcher, TypeListsAndAdditionalSchemas) {
  // {"type":"object","properties":{"x":{"type":["number","null"]}},"additionalProperties":{"type":"boolean"}}
  auto s = std::make_shared<JsonSchema>();
  s->nodes.resize(3);
  s->nodes[0].types = Node::kObject;
  s->nodes[0].property_names = {"x"};
  s->nodes[0].property_nodes = {1};
  s->nodes[0].additional_node = 2;
  s->nodes[1].types = Node::kNumber | Node::kNull;
  s->nodes[2].types = Node::kBoolean;
  EXPECT_TRUE(whole(s, R"({"x": null, "xy": true, "\u0041": false})"));
  EXPECT_TRUE(whole(s, R"({"x": 1.25})"));
  EXPECT_FALSE(start(s, R"({"x": true)"));
  EXPECT_FALSE(start(s, R"({"y": 1)"));
}

TEST(JsonTokenConstraint, TokensMustKeepTheTextValidAndEndOnlyWhenComplete) {
  auto texts = std::make_shared<std::vector<std::string>>(
      std::vector<std::string>{"", "{", "}", "\"a\"", ":", " 1", "x", "{}", " "});
  const int32_t eos = 0;
  JsonTokenConstraint c(nullptr, texts, {eos});
  EXPECT_FALSE(c.allows(eos));
  EXPECT_TRUE(c.allows(1));
  EXPECT_TRUE(c.allows(7));
  EXPECT_FALSE(c.allows(6));
  EXPECT_FALSE(c.allows(8));  // no whitespace before the value
  c.accept(1);
  EXPECT_TRUE(c.allows(8));
  EXPECT_TRUE(c.allows(3));
  EXPECT_TRUE(c.allows(2));
  EXPECT_FALSE(c.allows(4));
  for (int32_t t : {3, 4, 5}) c.accept(t);
  EXPECT_FALSE(c.allows(eos));
  c.accept(2);
  EXPECT_TRUE(c.complete());
  EXPECT_TRUE(c.allows(eos));
  EXPECT_FALSE(c.allows(8));  // nothing after the value, not even whitespace
}

TEST(JsonTokenConstraint, ReadsTheFirstTokenWithoutItsSentencePieceSpace) {
  auto texts = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"", " {", " }", "}"});
  JsonTokenConstraint plain(nullptr, texts, {0});
  EXPECT_FALSE(plain.allows(1));  // no whitespace before the value
  JsonTokenConstraint stripped(nullptr, texts, {0}, true);
  EXPECT_TRUE(stripped.allows(1));  // the client gets "{"
  stripped.accept(1);
  EXPECT_TRUE(stripped.allows(2));  // later spaces are kept: "{ }"
  stripped.accept(2);
  EXPECT_TRUE(stripped.allows(0));
}

}  // namespace
}  // namespace clusterctl::sampling
