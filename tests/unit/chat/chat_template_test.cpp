// The chat-template interpreter against the real templates of the common model families
// (tests/unit/chat/chat_template_data: templates from the models' tokenizer_config.json,
// expected prompts rendered by Python jinja2 the way transformers does, then read by eye),
// plus the Jinja features one at a time.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "worker/chat/chat_template.h"

namespace clusterctl::chat {
namespace {

using Json = nlohmann::ordered_json;

const std::string kDataDir = std::string(CLUSTERCTL_SOURCE_DIR) + "/tests/unit/chat/chat_template_data/";

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json cases() {
  auto text = read_file(kDataDir + "cases.json");
  if (!text) throw std::runtime_error("missing " + kDataDir + "cases.json");
  return Json::parse(*text);
}

void check_family(const std::string& family) {
  const Json all = cases();
  ASSERT_TRUE(all["templates"].contains(family)) << family;
  const Json& spec = all["templates"][family];
  auto source = read_file(kDataDir + family + ".jinja");
  ASSERT_TRUE(source) << family;
  ChatTemplate tmpl(*source, spec["bos_token"], spec["eos_token"]);
  EXPECT_FALSE(tmpl.is_fallback());
  ASSERT_FALSE(spec["conversations"].empty());
  for (const auto& conv_name : spec["conversations"]) {
    const Json& conv = all["conversations"][conv_name.get<std::string>()];
    Json extra = spec.value("extra", Json::object());
    for (auto it = conv.begin(); it != conv.end(); ++it) {
      if (it.key() != "messages" && it.key() != "add_generation_prompt") extra[it.key()] = it.value();
    }
    const bool add_generation_prompt = conv.value("add_generation_prompt", true);
    const std::string base = kDataDir + family + "." + conv_name.get<std::string>();
    SCOPED_TRACE(base);
    if (auto expected = read_file(base + ".expected")) {
      EXPECT_EQ(tmpl.render(conv["messages"], add_generation_prompt, extra), *expected);
    } else {
      auto error = read_file(base + ".error");
      ASSERT_TRUE(error) << "no .expected or .error file for " << base;
      try {
        tmpl.render(conv["messages"], add_generation_prompt, extra);
        ADD_FAILURE() << "the template accepted a conversation it must refuse";
      } catch (const TemplateError& e) {
        EXPECT_NE(std::string(e.what()).find(*error), std::string::npos) << e.what();
      }
    }
  }
}

TEST(ChatTemplateFamilies, Llama2) { check_family("llama2_chat"); }
TEST(ChatTemplateFamilies, Llama3_1And3_2) { check_family("llama3_2_instruct"); }
TEST(ChatTemplateFamilies, Qwen2_5) { check_family("qwen2_5_instruct"); }
TEST(ChatTemplateFamilies, ChatML) { check_family("chatml_openhermes"); }
TEST(ChatTemplateFamilies, MistralV0_1) { check_family("mistral_7b_instruct_v0_1"); }
TEST(ChatTemplateFamilies, MistralWithSystemPrompt) { check_family("mistral_v1_with_system"); }
TEST(ChatTemplateFamilies, MistralV3WithTools) { check_family("mistral_v3_tools"); }
TEST(ChatTemplateFamilies, Gemma) { check_family("gemma_it"); }
TEST(ChatTemplateFamilies, Phi3) { check_family("phi3_mini_instruct"); }
TEST(ChatTemplateFamilies, Zephyr) { check_family("zephyr_7b_beta"); }
TEST(ChatTemplateFamilies, DeepSeekR1WithThinking) { check_family("deepseek_r1"); }
TEST(ChatTemplateFamilies, DeepSeekV3_1ThinkingOnAndOff) { check_family("deepseek_v3_1"); }
TEST(ChatTemplateFamilies, KimiK2Instruct) { check_family("kimi_k2_instruct"); }
TEST(ChatTemplateFamilies, KimiK2Thinking) { check_family("kimi_k2_thinking"); }

TEST(ChatTemplateFamilies, Llama3UsesTodaysDateWhenNoneIsGiven) {
  auto source = read_file(kDataDir + "llama3_2_instruct.jinja");
  ASSERT_TRUE(source);
  ChatTemplate tmpl(*source, "<|begin_of_text|>", "<|eot_id|>");
  std::string out = tmpl.render(Json::parse(R"([{"role":"user","content":"hi"}])"), true);
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char year[8];
  std::strftime(year, sizeof year, "%Y", &local);
  EXPECT_NE(out.find(std::string(" ") + year + "\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("26 Jul 2024"), std::string::npos);
}

TEST(ChatTemplateFallback, PlainTranscriptWithImpliedStop) {
  ChatTemplate tmpl(std::nullopt, "<s>", "</s>");
  EXPECT_TRUE(tmpl.is_fallback());
  Json messages = Json::parse(R"([{"role":"system","content":"Be brief. "},{"role":"user","content":"Hi"},
                                  {"role":"assistant","content":"Hello."},{"role":"user","content":"Bye"}])");
  EXPECT_EQ(tmpl.render(messages, true), "<s>Be brief.\n\nUser: Hi\nAssistant: Hello.\nUser: Bye\nAssistant:");
  EXPECT_EQ(tmpl.render(messages, false), "<s>Be brief.\n\nUser: Hi\nAssistant: Hello.\nUser: Bye\n");
  ASSERT_EQ(tmpl.implied_stop_strings().size(), 1u);
  EXPECT_EQ(tmpl.implied_stop_strings()[0], "\nUser:");
  EXPECT_TRUE(ChatTemplate(std::string(), "", "").is_fallback());
}

// ---------------------------------------------------------------- features one by one

std::string render(const std::string& source, const std::string& context_json = "{}") {
  return JinjaTemplate(source).render(Value::from_json(Json::parse(context_json)));
}

TEST(Jinja, WhitespaceControlMatchesTransformersEnvironment) {
  // trim_blocks drops the newline after a block tag; lstrip_blocks the indentation before it.
  EXPECT_EQ(render("{% if true %}\n  yes\n{% endif %}\nafter"), "  yes\nafter");
  EXPECT_EQ(render("a\n    {% if true %}b{% endif %}"), "a\nb");
  // Not for expressions: only explicit '-' trims around {{ }}.
  EXPECT_EQ(render("a  {{ 'x' }}  b"), "a  x  b");
  EXPECT_EQ(render("a  {{- 'x' -}}  b"), "axb");
  EXPECT_EQ(render("a \n {%- if true -%} \n b {%- endif %}"), "ab");
  EXPECT_EQ(render("x {# note #}\ny"), "x y");
  EXPECT_EQ(render("{{ '}}' }}"), "}}");
}

TEST(Jinja, LoopVariablesFilterElseAndControl) {
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index0 }}{{ loop.index }}{% if loop.first %}F{% endif %}"
                   "{% if loop.last %}L{% endif %}{{ loop.length }} {% endfor %}",
                   R"({"xs":["a","b"]})"),
            "01F2 12L2 ");
  EXPECT_EQ(render("{% for x in [1,2,3,4,5] if x is odd %}{{ x }}{{ loop.last }} {% endfor %}"),
            "1False 3False 5True ");
  EXPECT_EQ(render("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif "
                   "%}{{ x }}{% endfor %}"),
            "13");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", R"({"d":{"b":1,"a":2}})"), "b=1;a=2;");
  EXPECT_EQ(render("{% for x in missing %}{{ x }}{% endfor %}ok"), "ok");
}

TEST(Jinja, SetScopingAndNamespace) {
  // A plain `set` inside a loop does not leak out; a namespace attribute does.
  EXPECT_EQ(render("{% set v = 'outer' %}{% for x in [1] %}{% set v = 'inner' %}{% endfor %}{{ v }}"), "outer");
  EXPECT_EQ(
      render("{% set ns = namespace(n=0) %}{% for x in [1,2,3] %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}"),
      "6");
  EXPECT_EQ(render("{% if true %}{% set v = 1 %}{% endif %}{{ v }}"), "1");
  EXPECT_EQ(render("{% set b %}x{{ 1 + 1 }}{% endset %}{{ b | upper }}"), "X2");
}

TEST(Jinja, ExpressionsFollowPythonSemantics) {
  EXPECT_EQ(render("{{ xs[1:] }}|{{ xs[:-1] }}|{{ xs[::-1] }}|{{ 'hello'[1:3] }}|{{ xs[-1] }}", R"({"xs":[1,2,3]})"),
            "[2, 3]|[1, 2]|[3, 2, 1]|el|3");
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 3 }} {{ 1 + 2 * 3 }}"),
            "3 -4 2 3.5 8 7");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none }} {{ 'a' + 'b' }} {{ [1] + [2] }}"), "a1None ab [1, 2]");
  EXPECT_EQ(render("{{ 'at' in 'cat' }} {{ 2 not in [1] }} {{ 'k' in d }} {{ not 1 == 2 and 3 > 2 or false }}",
                   R"({"d":{"k":0}})"),
            "True True True True");
  EXPECT_EQ(render("{{ m.role }}/{{ m['role'] }}/{{ m.missing is defined }}/{{ none is none }}/{{ 'x' is string }}",
                   R"({"m":{"role":"user"}})"),
            "user/user/False/True/True");
  EXPECT_EQ(render("{{ 'y' if x else 'n' }}{{ 'never' if false }}", R"({"x":0})"), "n");
  EXPECT_EQ(render("{{ true }} {{ none }} {{ 1.0 }} {{ ['a', 1] }} {{ {'k': 'v'} }}"),
            "True None 1.0 ['a', 1] {'k': 'v'}");
}

TEST(Jinja, FiltersAndMethods) {
  EXPECT_EQ(render("{{ '  a b  ' | trim }}|{{ xs | length }}|{{ 'Ab' | upper }}{{ 'Ab' | lower }}|{{ xs | join(',') "
                   "}}|{{ xs | first }}{{ xs | last }}",
                   R"({"xs":[1,2,3]})"),
            "a b|3|ABab|1,2,3|13");
  EXPECT_EQ(render("{{ nope | default('d') }}|{{ '' | default('e', true) }}|{{ '' | default('e') }}|{{ 5 | string }}"),
            "d|e||5");
  EXPECT_EQ(render("{{ v | tojson }}", R"({"v":{"b":[1,true,null],"a":"x\"<y>"}})"),
            R"({"b": [1, true, null], "a": "x\"<y>"})");
  EXPECT_EQ(render("{{ v | tojson(indent=2) }}", R"({"v":{"a":[1]}})"), "{\n  \"a\": [\n    1\n  ]\n}");
  EXPECT_EQ(render("{{ v | tojson(indent=2) }}", R"({"v":{"a":[],"b":{}}})"), "{\n  \"a\": [],\n  \"b\": {}\n}");
  EXPECT_EQ(render("{{ v | tojson }}", R"({"v":[[],{}]})"), "[[], {}]");
  EXPECT_EQ(render("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='c') | list }}",
                   R"({"ms":[{"role":"user","c":1},{"role":"bot","c":2},{"role":"user","c":3}]})"),
            "[1, 3]");
  EXPECT_EQ(render("{{ ' x '.strip() }}|{{ 'a-b'.split('-') }}|{{ 'hello world'.title() }}|{{ 'abc'.startswith('ab') "
                   "}}|{{ d.get('z', 0) }}",
                   R"({"d":{}})"),
            "x|['a', 'b']|Hello World|True|0");
  EXPECT_EQ(render("{{ range(3) | list }} {{ range(4, 0, -2) | list }}"), "[0, 1, 2] [4, 2]");
}

// Kimi-K2's templates: macros (positional, keyword and default parameters; their own `set`s;
// namespaces and lists of the caller changed through them), list append and pop.
TEST(Jinja, MacrosAndListMethods) {
  EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                   "{{ greet('a') }} {{ greet('b', '?') }} {{ greet(punct='.', name='c') }}"),
            "Hi a! Hi b? Hi c.");
  EXPECT_EQ(render("{% set ns = namespace(n=0, ids=[]) %}{% macro count(x) %}{% set y = x * 2 %}"
                   "{% set ns.n = ns.n + 1 %}{% set _ = ns.ids.append(y) %}{% endmacro %}"
                   "{{ count(1) }}{{ count(5) }}{{ ns.n }} {{ ns.ids }} {{ y is defined }} "
                   "{{ ns.ids.pop(0) }} {{ ns.ids }} {{ [1, 2, 3].pop() }}"),
            "2 [2, 10] False 2 [10] 3");
}

TEST(Jinja, ErrorsNameTheCauseAndPosition) {
  auto message_of = [](const std::string& source, const std::string& context = "{}") -> std::string {
    try {
      render(source, context);
    } catch (const TemplateError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message_of("{{ raise_exception('Roles must alternate') }}").find("Roles must alternate"),
            std::string::npos);
  EXPECT_NE(message_of("line one\n{% if x %}").find("missing '{% endif %}'"), std::string::npos);
  EXPECT_NE(message_of("ok\n  {{ a.b.c }}").find("'a' is undefined"), std::string::npos);
  EXPECT_NE(message_of("ok\n  {{ a.b.c }}").find("line 2, column"), std::string::npos);
  EXPECT_NE(message_of("{{ 'a' + 1 }}").find("cannot combine a string with an integer"), std::string::npos);
  EXPECT_NE(message_of("{% call m() %}{% endcall %}").find("unsupported tag 'call'"), std::string::npos);
  EXPECT_NE(message_of("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}").find("takes 1 argument(s), not 2"),
            std::string::npos);
  EXPECT_NE(message_of("{{ x | frobnicate }}", R"({"x":[1]})").find("'frobnicate'"), std::string::npos);
  EXPECT_NE(message_of("{{ 'unterminated }}").find("unclosed"), std::string::npos);
}

}  // namespace
}  // namespace clusterctl::chat
