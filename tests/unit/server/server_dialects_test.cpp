// The Ollama and Anthropic dialects without sockets: what their requests become (options and
// fields mapped onto the generation, or a 400 naming them), how their conversations with tool
// calls reach the chat template, and what their writers send for a generation with tool calls.
// (The official clients drive them over HTTP in tests/api.)
#include <gtest/gtest.h>

#include "worker/sampling/json_matcher.h"
#include "worker/server/anthropic_protocol.h"
#include "worker/server/ollama_protocol.h"
#include "worker/server/openai_writer.h"

namespace clusterctl::server {
namespace {

const ModelInfo kModel{"m", std::nullopt, "<s>", "</s>", 256, "llama", 0};
// ChatML that prints tools and calls (a Hermes-style template: its tool-call format is read).
const chat::ChatTemplate& chatml() {
  static const chat::ChatTemplate t(
      std::string(
          "{% if tools %}TOOLS={{ tools | tojson }}\n{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n"
          "{{ m.content }}{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function.name }} "
          "{{ c.function.arguments | tojson }}</tool_call>{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"),
      "<s>", "</s>");
  return t;
}
ProtocolLimits limits() {
  ProtocolLimits l;
  l.max_tokens_limit = 100;
  return l;
}

ApiError refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted";
  return ApiError(0, "", "");
}

PreparedRequest ollama(OllamaEndpoint e, const std::string& body) {
  return prepare_ollama(e, body, kModel, chatml(), limits());
}

TEST(OllamaRequests, OptionsMapOntoTheGeneration) {
  PreparedRequest p = ollama(OllamaEndpoint::chat,
                             R"({"model": "m:latest", "messages": [{"role": "user", "content": "hi"}],
                                 "options": {"temperature": 0.25, "top_p": 0.5, "seed": 9, "num_predict": 7,
                                             "stop": ["x", "y"], "num_ctx": 256}})");
  EXPECT_TRUE(p.stream);  // Ollama's default
  EXPECT_FLOAT_EQ(p.generation.sampling.temperature, 0.25f);
  EXPECT_FLOAT_EQ(p.generation.sampling.top_p, 0.5f);
  EXPECT_EQ(p.generation.sampling.seed, 9u);
  EXPECT_EQ(p.generation.max_tokens, 7);
  EXPECT_EQ(p.generation.stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(p.generation.templated);
  EXPECT_EQ(p.generation.prompt, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_FALSE(p.tool_format);

  EXPECT_EQ(ollama(OllamaEndpoint::generate, R"({"model": "m", "prompt": "p", "options": {"num_predict": -1}})")
                .generation.max_tokens,
            100);
  PreparedRequest raw =
      ollama(OllamaEndpoint::generate, R"({"model": "m", "prompt": "p q", "raw": true, "stream": false})");
  EXPECT_FALSE(raw.stream);
  EXPECT_FALSE(raw.generation.templated);
  EXPECT_EQ(raw.generation.prompt, "p q");
  EXPECT_EQ(ollama(OllamaEndpoint::generate, R"({"model": "m", "prompt": "q", "system": "s"})").generation.prompt,
            "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n");
}

TEST(OllamaRequests, SamplingOptionsAndFormatMapOntoTheGeneration) {
  PreparedRequest p = ollama(OllamaEndpoint::generate, R"({"model": "m", "prompt": "p",
      "format": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
      "options": {"top_k": 5, "min_p": 0.1, "repeat_penalty": 1.1, "presence_penalty": 0.5,
                  "frequency_penalty": -0.5}})");
  const SamplingParams& s = p.generation.sampling;
  EXPECT_EQ(s.top_k, 5);
  EXPECT_FLOAT_EQ(s.min_p, 0.1f);
  EXPECT_FLOAT_EQ(s.repetition_penalty, 1.1f);
  EXPECT_FLOAT_EQ(s.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(s.frequency_penalty, -0.5f);
  EXPECT_TRUE(s.constrain_json);
  ASSERT_TRUE(s.json_schema);
  EXPECT_EQ(s.json_schema->nodes[0].property_names, std::vector<std::string>{"a"});
  const SamplingParams j =
      ollama(OllamaEndpoint::generate, R"({"model": "m", "prompt": "p", "format": "json"})").generation.sampling;
  EXPECT_TRUE(j.constrain_json);
  EXPECT_FALSE(j.json_schema);  // any JSON object
}

TEST(OllamaRequests, WhatIsNotServedIsRefusedByName) {
  const std::string chat = R"("messages": [{"role": "user", "content": "hi"}])";
  for (const auto& [body, needle] : std::vector<std::pair<std::string, std::string>>{
           {R"({"model": "m", "options": {"mirostat": 1}, )" + chat + "}", "option 'mirostat'"},
           {R"({"model": "m", "options": {"num_ctx": 4096}, )" + chat + "}", "context of 256"},
           {R"({"model": "m", "options": {"num_predict": 0}, )" + chat + "}", "options.num_predict"},
           {R"({"model": "m", "options": {"num_predict": 101}, )" + chat + "}", "this server's limit"},
           {R"({"model": "m", "format": "xml", )" + chat + "}", "'format'"},
           {R"({"model": "m", "format": {"type": "string", "pattern": "a"}, )" + chat + "}", "'pattern'"},
           {R"({"model": "m", "options": {"top_k": -1}, )" + chat + "}", "options.top_k"},
           {R"({"model": "m", "think": true, )" + chat + "}", "'think'"},
           {R"({"model": "m", "options": {"repeat_last_n": 32}, )" + chat + "}", "options.repeat_last_n"},
           {R"({"model": "m", "format": "json", "tools": [{"type": "function", "function": {"name": "f"}}], )" + chat +
                "}",
            "cannot be combined"},
           {R"({"model": "m", "images": ["aGk="], )" + chat + "}", "'images'"},
           {R"({"model": "m", "messages": [{"role": "user", "content": "hi", "images": ["x"]}]})", "images"},
           {R"({"model": "m", "messages": [{"role": "robot", "content": "hi"}]})", "role"},
       }) {
    const std::string& text = body;  // (clang before 16 cannot capture a structured binding)
    const ApiError e = refusal([&] { ollama(OllamaEndpoint::chat, text); });
    EXPECT_EQ(e.status(), 400) << body;
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_EQ(error_body(Dialect::ollama, e), Json({{"error", e.what()}}));
  }
  EXPECT_EQ(refusal([&] { ollama(OllamaEndpoint::chat, R"({"model": "llama3", )" + chat + "}"); }).status(), 404);
}

TEST(OllamaRequests, ToolCallsInTheConversationReachTheTemplate) {
  PreparedRequest p = ollama(OllamaEndpoint::chat, R"({"model": "m", "messages": [
      {"role": "user", "content": "w?"},
      {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
      {"role": "tool", "content": "42", "tool_name": "f"}],
    "tools": [{"type": "function", "function": {"name": "f"}}]})");
  ASSERT_TRUE(p.tool_format);
  EXPECT_EQ(*p.tool_format, chat::ToolCallFormat::hermes);
  EXPECT_TRUE(p.generation.render_special);
  EXPECT_NE(p.generation.prompt.find("<tool_call>f {\"a\": 1}</tool_call>"), std::string::npos) << p.generation.prompt;
  EXPECT_NE(p.generation.prompt.find("<|im_start|>tool\n42<|im_end|>"), std::string::npos);
}

TEST(OllamaResponses, ToolCallsAndTheLastLine) {
  PreparedRequest p =
      ollama(OllamaEndpoint::chat, R"({"model": "m", "messages": [{"role": "user", "content": "hi"}]})");
  EXPECT_EQ(p.writer->stream_content_type(), "application/x-ndjson");
  Outcome o;
  o.tool_calls.push_back({"", "f", R"({"a":1})"});
  o.usage = {3, 4};
  o.total_seconds = 2;
  o.prompt_seconds = 0.5;
  std::vector<int32_t> ids;
  const std::string end = p.writer->stream_end(o, ids);
  const size_t newline = end.find('\n');
  ASSERT_NE(newline, std::string::npos);
  const Json calls = Json::parse(end.substr(0, newline));
  EXPECT_EQ(calls["message"]["tool_calls"], Json::parse(R"([{"function": {"name": "f", "arguments": {"a": 1}}}])"));
  EXPECT_FALSE(calls["done"].get<bool>());
  const Json last = Json::parse(end.substr(newline + 1));
  EXPECT_TRUE(last["done"].get<bool>());
  EXPECT_EQ(last["done_reason"], "stop");
  EXPECT_EQ(last["prompt_eval_count"], 3);
  EXPECT_EQ(last["eval_count"], 4);
  EXPECT_EQ(last["total_duration"], 2000000000);
  EXPECT_EQ(last["eval_duration"], 1500000000);
}

PreparedRequest anthropic(const std::string& body) {
  return prepare_anthropic(body, kModel, chatml(), limits(), "id1");
}

TEST(AnthropicRequests, FieldsMapOntoTheGeneration) {
  PreparedRequest p = anthropic(R"({"model": "m", "max_tokens": 9, "temperature": 0.5, "top_p": 0.9, "top_k": 7,
      "stop_sequences": ["END"], "stream": true, "metadata": {"user_id": "u"}, "thinking": {"type": "disabled"},
      "system": [{"type": "text", "text": "S1"}, {"type": "text", "text": "S2"}],
      "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})");
  EXPECT_EQ(p.generation.max_tokens, 9);
  EXPECT_FLOAT_EQ(p.generation.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(p.generation.sampling.top_p, 0.9f);
  EXPECT_EQ(p.generation.sampling.top_k, 7);
  EXPECT_EQ(p.generation.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(p.stream);
  EXPECT_EQ(p.generation.prompt,
            "<|im_start|>system\nS1\nS2<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(AnthropicRequests, WhatIsNotServedIsRefusedInAnthropicsShape) {
  const std::string msgs = R"("messages": [{"role": "user", "content": "hi"}])";
  for (const auto& [body, needle] : std::vector<std::pair<std::string, std::string>>{
           {R"({"model": "m", )" + msgs + "}", "max_tokens"},
           {R"({"model": "m", "max_tokens": 5, "top_k": -1, )" + msgs + "}", "'top_k'"},
           {R"({"model": "m", "max_tokens": 5, "temperature": 1.5, )" + msgs + "}", "temperature"},
           {R"({"model": "m", "max_tokens": 5, "thinking": {"type": "enabled", "budget_tokens": 9}, )" + msgs + "}",
            "'thinking'"},
           {R"({"model": "m", "max_tokens": 5, "tool_choice": {"type": "any"}, )" + msgs + "}", "constrained"},
           {R"({"model": "m", "max_tokens": 5, "tools": [{"type": "web_search_20250305", "name": "w"}], )" + msgs + "}",
            "server tools"},
           {R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image"}]}]})",
            "messages.0.content.0"},
       }) {
    const std::string& text = body;
    const ApiError e = refusal([&] { anthropic(text); });
    EXPECT_EQ(e.status(), 400) << body;
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    const Json shaped = error_body(Dialect::anthropic, e);
    EXPECT_EQ(shaped["type"], "error");
    EXPECT_EQ(shaped["error"]["type"], "invalid_request_error");
  }
  const ApiError other = refusal([&] { anthropic(R"({"model": "claude", "max_tokens": 5, )" + msgs + "}"); });
  EXPECT_EQ(error_body(Dialect::anthropic, other)["error"]["type"], "not_found_error");
}

TEST(AnthropicRequests, ToolUseAndToolResultBlocksReachTheTemplate) {
  PreparedRequest p = anthropic(R"({"model": "m", "max_tokens": 5,
      "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
      "messages": [{"role": "user", "content": "w?"},
                   {"role": "assistant", "content": [{"type": "text", "text": "ok"},
                                                     {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
                   {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"},
                                                {"type": "text", "text": "and?"}]}]})");
  ASSERT_TRUE(p.tool_format);
  EXPECT_EQ(p.tool_id_prefix, "toolu_");
  const std::string& s = p.generation.prompt;
  EXPECT_NE(s.find(R"(TOOLS=[{"type": "function", "function": {"name": "f", "description": "d", "parameters": )"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("<|im_start|>assistant\nok<tool_call>f {\"a\": 1}</tool_call><|im_end|>\n<|im_start|>tool\n42"
                   "<|im_end|>\n<|im_start|>user\nand?<|im_end|>"),
            std::string::npos)
      << s;
}

TEST(AnthropicResponses, StreamEventsForTextThenAToolCall) {
  PreparedRequest p = anthropic(R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})");
  std::vector<int32_t> ids;
  std::string events = p.writer->stream_begin() + p.writer->stream_text("Hi", ids);
  Outcome o;
  o.tool_calls.push_back({"toolu_1", "f", R"({"a":1})"});
  o.usage = {3, 4};
  events += p.writer->stream_end(o, ids);
  std::vector<std::string> names;
  std::vector<Json> data;
  for (size_t at = 0; (at = events.find("event: ", at)) != std::string::npos;) {
    const size_t nl = events.find('\n', at);
    names.push_back(events.substr(at + 7, nl - at - 7));
    const size_t end = events.find("\n\n", nl);
    data.push_back(Json::parse(events.substr(nl + 7, end - nl - 7)));
    at = end;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"message_start", "content_block_start", "content_block_delta",
                                             "content_block_stop", "content_block_start", "content_block_delta",
                                             "content_block_stop", "message_delta", "message_stop"}));
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(data[i]["type"], names[i]);
  EXPECT_EQ(data[0]["message"]["id"], "msg_id1");
  EXPECT_EQ(data[4]["index"], 1);
  EXPECT_EQ(data[4]["content_block"]["type"], "tool_use");
  EXPECT_EQ(data[5]["delta"], Json::parse(R"({"type": "input_json_delta", "partial_json": "{\"a\":1}"})"));
  EXPECT_EQ(data[7]["delta"]["stop_reason"], "tool_use");
  EXPECT_EQ(
      data[7]["usage"],
      Json::parse(
          R"({"input_tokens": 3, "output_tokens": 4, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})"));
}

TEST(AnthropicResponses, ACallSentWhileStreamingIsNotSentAgainAtTheEnd) {
  PreparedRequest p = anthropic(R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})");
  std::vector<int32_t> ids;
  std::string events = p.writer->stream_begin() + p.writer->stream_text("Hi", ids);
  Outcome o;
  o.tool_calls = {{"toolu_0", "f", "{}"}, {"toolu_1", "g", "{}"}};
  events += p.writer->stream_tool_calls({o.tool_calls[0]}, 0);
  o.streamed_calls = 1;
  events += p.writer->stream_end(o, ids);
  auto count = [&](const std::string& what) {
    size_t n = 0;
    for (size_t at = 0; (at = events.find(what, at)) != std::string::npos; at += what.size()) ++n;
    return n;
  };
  EXPECT_EQ(count("\"type\":\"tool_use\""), 2u);
  EXPECT_EQ(count("\"id\":\"toolu_0\""), 1u);
  EXPECT_EQ(count("event: content_block_stop"), 3u);  // text, f, g: each closed once
  EXPECT_NE(events.find("\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\""), std::string::npos);
}

TEST(AnthropicResponses, StopReasons) {
  PreparedRequest p = anthropic(
      R"({"model": "m", "max_tokens": 5, "stop_sequences": ["END"], "messages": [{"role": "user", "content": "x"}]})");
  auto whole = [&](Outcome o) { return Json::parse(p.writer->whole("t", o, {})); };
  Outcome o;
  EXPECT_EQ(whole(o)["stop_reason"], "end_turn");
  o.reason = FinishReason::length;
  EXPECT_EQ(whole(o)["stop_reason"], "max_tokens");
  o.reason = FinishReason::cancelled;
  o.stop_sequence = "END";
  EXPECT_EQ(whole(o)["stop_reason"], "stop_sequence");
  EXPECT_EQ(whole(o)["stop_sequence"], "END");
  o.stop_sequence = "\nUser:";  // implied by the prompt format, not the client's
  EXPECT_EQ(whole(o)["stop_reason"], "end_turn");
  EXPECT_TRUE(whole(o)["stop_sequence"].is_null());
}

TEST(OpenAiResponses, ToolCallsWholeAndStreamed) {
  ApiRequest req;
  req.endpoint = Endpoint::chat_completions;
  req.model = "m";
  auto writer = make_openai_writer(req, "chatcmpl-1", 0);
  Outcome o;
  o.tool_calls.push_back({"call_1", "f", R"({"a":1})"});
  const Json whole = Json::parse(writer->whole("", o, {}));
  EXPECT_EQ(whole["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_TRUE(whole["choices"][0]["message"]["content"].is_null());
  EXPECT_EQ(
      whole["choices"][0]["message"]["tool_calls"],
      Json::parse(R"([{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}])"));
  std::vector<int32_t> ids;
  const std::string end = writer->stream_end(o, ids);
  const Json delta = Json::parse(end.substr(6, end.find("\n\n") - 6));
  EXPECT_EQ(delta["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
  EXPECT_NE(end.find("\"finish_reason\":\"tool_calls\""), std::string::npos);
}

}  // namespace
}  // namespace clusterctl::server
