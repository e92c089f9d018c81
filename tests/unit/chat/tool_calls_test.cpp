// Tool calls: each family's real chat template (tests/unit/chat/tool_call_templates, from the
// models' tokenizer_config.json) renders an assistant turn with tool calls, the parser reads that
// text back into the same calls, whole and fed a byte at a time; plus answers as models write them
// (text before a call, several calls, JSON that is no call, a broken call).
#include "worker/chat/tool_calls.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "worker/chat/chat_template.h"

namespace clusterctl::chat {
namespace {

using Json = nlohmann::ordered_json;

const std::string kDir = std::string(CLUSTERCTL_SOURCE_DIR) + "/tests/unit/chat/tool_call_templates/";

std::string read_template(const std::string& name) {
  std::ifstream in(kDir + name + ".jinja", std::ios::binary);
  if (!in) throw std::runtime_error("missing " + kDir + name + ".jinja");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Json kTools = Json::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
  {"type": "function", "function": {"name": "get_time", "description": "Local time in a city",
   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])");

// The calls as an OpenAI client sends them back (arguments as JSON text, content null).
Json assistant_with_calls(bool two) {
  Json calls = Json::array();
  calls.push_back({{"id", "call00001"},
                   {"type", "function"},
                   {"function", {{"name", "get_weather"}, {"arguments", R"({"city": "Paris"})"}}}});
  if (two) {
    calls.push_back({{"id", "call00002"},
                     {"type", "function"},
                     {"function", {{"name", "get_time"}, {"arguments", R"({"city": "Tokyo"})"}}}});
  }
  return Json{{"role", "assistant"}, {"content", nullptr}, {"tool_calls", calls}};
}

struct Family {
  std::string template_name;
  ToolCallFormat format;
  std::string bos, eos;
  std::string assistant_start;         // what opens the assistant's turn
  std::vector<std::string> turn_ends;  // what ends it after its calls
  bool parallel = true;                // the template renders more than one call
};

// The assistant turn as the template renders it: after the last assistant_start, less the end of turn.
std::string rendered_turn(const Family& f, const Json& turn) {
  ChatTemplate tmpl(read_template(f.template_name), f.bos, f.eos);
  const Json conversation = Json::array({Json{{"role", "user"}, {"content", "Weather in Paris?"}}, turn});
  const std::string full = tmpl.render(conversation, false, Json{{"tools", kTools}});
  const size_t start = full.rfind(f.assistant_start);
  EXPECT_NE(start, std::string::npos) << full;
  std::string out = full.substr(start == std::string::npos ? 0 : start + f.assistant_start.size());
  for (const auto& end : f.turn_ends) {
    const size_t at = out.rfind(end);
    if (at != std::string::npos && at + end.size() >= out.size() - 1) {
      out.resize(at);
      break;
    }
  }
  return out;
}

void expect_calls(const ToolCallParser::Result& r, bool two) {
  ASSERT_EQ(r.calls.size(), two ? 2u : 1u) << r.content;
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(Json::parse(r.calls[0].arguments), Json::parse(R"({"city": "Paris"})"));
  if (two) {
    EXPECT_EQ(r.calls[1].name, "get_time");
    EXPECT_EQ(Json::parse(r.calls[1].arguments), Json::parse(R"({"city": "Tokyo"})"));
  }
  // Qwen3's and DeepSeek V3.1's templates write an empty reasoning block before the calls (the
  // models do too): content, not a call.
  std::string content = r.content;
  if (content.rfind("<think>", 0) == 0 && content.find("</think>") != std::string::npos &&
      content.find_first_not_of(" \n", 7) == content.find("</think>")) {
    content.erase(0, content.find("</think>") + 8);
  }
  EXPECT_EQ(content.find_first_not_of(" \n"), std::string::npos) << content;
}

// Fed a byte at a time, taking calls as they complete (as a streamed answer sends them): no
// content escapes, and the calls are the same as parsed whole.
ToolCallParser::Result parse_streamed(ToolCallFormat format, const std::string& text) {
  ToolCallParser parser(format);
  std::string content;
  std::vector<ToolCall> calls;
  for (char c : text) {
    content += parser.feed(std::string_view(&c, 1));
    for (auto& call : parser.take_complete()) calls.push_back(std::move(call));
  }
  ToolCallParser::Result r = parser.finish();
  r.content = content + r.content;
  calls.insert(calls.end(), r.calls.begin(), r.calls.end());
  r.calls = std::move(calls);
  return r;
}

void check_family(const Family& f) {
  SCOPED_TRACE(f.template_name);
  EXPECT_EQ(detect_tool_call_format(read_template(f.template_name)), f.format);
  for (bool two : {false, true}) {
    if (two && !f.parallel) continue;
    const std::string turn = rendered_turn(f, assistant_with_calls(two));
    SCOPED_TRACE(turn);
    expect_calls(parse_tool_calls(f.format, turn), two);
    expect_calls(parse_streamed(f.format, turn), two);
  }
  // The tool's answer renders after the call (role "tool").
  ChatTemplate tmpl(read_template(f.template_name), f.bos, f.eos);
  Json conversation =
      Json::array({Json{{"role", "user"}, {"content", "Weather in Paris?"}}, assistant_with_calls(false),
                   Json{{"role", "tool"}, {"tool_call_id", "call00001"}, {"content", "21 degrees"}}});
  const std::string prompt = tmpl.render(conversation, true, Json{{"tools", kTools}});
  EXPECT_NE(prompt.find("21 degrees"), std::string::npos) << prompt;
}

TEST(ToolCallFamilies, Qwen3Hermes) {
  check_family(
      {"Qwen-Qwen3-0.6B", ToolCallFormat::hermes, "", "<|im_end|>", "<|im_start|>assistant\n", {"<|im_end|>"}});
}
TEST(ToolCallFamilies, Qwen2_5Hermes) {
  check_family({"../chat_template_data/qwen2_5_instruct",
                ToolCallFormat::hermes,
                "",
                "<|im_end|>",
                "<|im_start|>assistant\n",
                {"<|im_end|>"}});
}
TEST(ToolCallFamilies, Llama3_1) {
  // The Llama 3.1 template renders one call per assistant turn.
  check_family({"meta-llama-Llama-3.1-8B-Instruct",
                ToolCallFormat::llama3,
                "<|begin_of_text|>",
                "<|eot_id|>",
                "<|start_header_id|>assistant<|end_header_id|>\n\n",
                {"<|eot_id|>", "<|eom_id|>"},
                false});
}
TEST(ToolCallFamilies, Llama3_2) {
  check_family({"../chat_template_data/llama3_2_instruct",
                ToolCallFormat::llama3,
                "<|begin_of_text|>",
                "<|eot_id|>",
                "<|start_header_id|>assistant<|end_header_id|>\n\n",
                {"<|eot_id|>", "<|eom_id|>"},
                false});
}
TEST(ToolCallFamilies, DeepSeekR1) {
  check_family({"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
                ToolCallFormat::deepseek,
                "<｜begin▁of▁sentence｜>",
                "<｜end▁of▁sentence｜>",
                "<｜Assistant｜>",
                {"<｜end▁of▁sentence｜>"}});
}
TEST(ToolCallFamilies, DeepSeekV3_1) {
  check_family({"deepseek-ai-DeepSeek-V3.1",
                ToolCallFormat::deepseek,
                "<｜begin▁of▁sentence｜>",
                "<｜end▁of▁sentence｜>",
                "<｜Assistant｜>",
                {"<｜end▁of▁sentence｜>"}});
}
TEST(ToolCallFamilies, KimiK2) {
  check_family({"moonshotai-Kimi-K2",
                ToolCallFormat::kimi_k2,
                "[BOS]",
                "[EOS]",
                "<|im_assistant|>assistant<|im_middle|>",
                {"<|im_end|>"}});
}
TEST(ToolCallFamilies, MistralNemo) {
  check_family({"mistralai-Mistral-Nemo-Instruct-2407", ToolCallFormat::mistral, "<s>", "</s>", "[/INST]", {"</s>"}});
}
TEST(ToolCallFamilies, MistralV3) {
  check_family({"../chat_template_data/mistral_v3_tools", ToolCallFormat::mistral, "<s>", "</s>", "[/INST]", {"</s>"}});
}

TEST(ToolCallFormats, DetectionOfTemplatesWithoutCalls) {
  EXPECT_EQ(detect_tool_call_format(ChatTemplate::fallback_source()), ToolCallFormat::none);
  EXPECT_EQ(detect_tool_call_format("{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}"),
            ToolCallFormat::none);
}

// Answers as models write them.
TEST(ToolCallParsing, HermesTextBeforeTheCallIsContentAndStreamsAtOnce) {
  ToolCallParser p(ToolCallFormat::hermes);
  EXPECT_EQ(p.feed("Let me look "), "Let me look ");
  EXPECT_EQ(p.feed("that up.\n<tool"), "that up.\n");  // "<tool" may start a call: held
  EXPECT_EQ(p.feed("_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"), "");
  EXPECT_TRUE(p.in_call());
  auto r = p.finish();
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(r.content, "");
}

TEST(ToolCallParsing, CallsAreTakenAsTheyCloseAndTextAfterThemIsContent) {
  ToolCallParser p(ToolCallFormat::deepseek);
  p.feed("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}");
  EXPECT_TRUE(p.take_complete().empty());  // not closed yet
  p.feed("<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>get_time");
  auto first = p.take_complete();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].name, "get_weather");
  p.feed("<｜tool▁sep｜>{\"city\": \"Tokyo\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>Done.");
  auto rest = p.finish();
  ASSERT_EQ(rest.calls.size(), 1u);
  EXPECT_EQ(rest.calls[0].name, "get_time");
  EXPECT_EQ(rest.content, "Done.");

  ToolCallParser h(ToolCallFormat::hermes);
  h.feed("<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>");
  EXPECT_EQ(h.take_complete().size(), 1u);
  auto after = h.finish();
  EXPECT_TRUE(after.calls.empty());
  EXPECT_EQ(after.content, "");
}

TEST(ToolCallParsing, HeldTextThatIsNoMarkerIsReleased) {
  ToolCallParser p(ToolCallFormat::hermes);
  EXPECT_EQ(p.feed("a <tool"), "a ");
  EXPECT_EQ(p.feed("box> b"), "<toolbox> b");
  EXPECT_EQ(p.finish().content, "");
}

TEST(ToolCallParsing, ABrokenCallIsTheModelsTextAsWritten) {
  const std::string text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \n</tool_call>";
  auto r = parse_tool_calls(ToolCallFormat::hermes, text);
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(r.content, text);
}

TEST(ToolCallParsing, Llama3JsonThatIsNoCallIsContent) {
  auto r = parse_tool_calls(ToolCallFormat::llama3, "{\"answer\": 42}");
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(r.content, "{\"answer\": 42}");
  // A call only when the answer starts with it: JSON later in a text is text.
  r = parse_tool_calls(ToolCallFormat::llama3, "Use {\"name\": \"get_weather\", \"parameters\": {}}");
  EXPECT_TRUE(r.calls.empty());
}

TEST(ToolCallParsing, Llama3PythonTagAndSeveralCalls) {
  auto r = parse_tool_calls(ToolCallFormat::llama3,
                            "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}; "
                            "{\"name\": \"get_time\", \"parameters\": {\"city\": \"Tokyo\"}}");
  expect_calls(r, true);
}

TEST(ToolCallParsing, Llama3BuiltInToolCall) {
  auto r = parse_tool_calls(ToolCallFormat::llama3,
                            "<|python_tag|>brave_search.call(query=\"weather in \\\"Paris\\\"\", count=3, safe=True)");
  ASSERT_EQ(r.calls.size(), 1u) << r.content;
  EXPECT_EQ(r.calls[0].name, "brave_search");
  EXPECT_EQ(Json::parse(r.calls[0].arguments),
            Json::parse(R"({"query": "weather in \"Paris\"", "count": 3, "safe": true})"));
  // Not a call: code after the tag stays the model's text.
  r = parse_tool_calls(ToolCallFormat::llama3, "<|python_tag|>print(1)");
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(r.content, "<|python_tag|>print(1)");
}

TEST(ToolCallParsing, KimiCallIdsAreTheModels) {
  auto r = parse_tool_calls(ToolCallFormat::kimi_k2,
                            "Checking.<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
                            "<|tool_call_argument_begin|>{\"city\": \"Paris\"}<|tool_call_end|>"
                            "<|tool_calls_section_end|>");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].id, "functions.get_weather:0");
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.content, "Checking.");
}

TEST(ToolCallParsing, DeepSeekR1FencedArguments) {
  auto r = parse_tool_calls(ToolCallFormat::deepseek,
                            "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
                            "{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>");
  expect_calls(r, false);
}

TEST(ToolCallParsing, MistralNamedForm) {
  auto r = parse_tool_calls(ToolCallFormat::mistral, "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}");
  expect_calls(r, false);
}

TEST(ToolCallMessages, ArgumentsTextBecomesAnObjectAndNullContentEmpty) {
  const Json out = messages_for_template(Json::array({assistant_with_calls(false)}), true);
  EXPECT_EQ(out[0]["content"], "");
  EXPECT_TRUE(messages_for_template(Json::array({assistant_with_calls(false)}), false)[0]["content"].is_null());
  EXPECT_EQ(out[0]["tool_calls"][0]["function"]["arguments"], Json::parse(R"({"city": "Paris"})"));
}

}  // namespace
}  // namespace clusterctl::chat
