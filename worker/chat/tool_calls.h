#pragma once
// Tool calls in a model's answer: which format a chat template's family writes them in, and a
// parser that splits generated text into content and calls, as it streams. The formats are the
// ones the families' own templates render for an assistant message with `tool_calls` (what the
// models were trained on; llama.cpp's common/chat.cpp reads them the same way):
//
//   hermes     Qwen 2.5/3, Hermes 2/3:  <tool_call>\n{"name": N, "arguments": {..}}\n</tool_call>
//   llama3     Llama 3.1/3.2/3.3:       {"name": N, "parameters": {..}}  (the whole answer), or
//                                       <|python_tag|>{"name": ..} ...
//   deepseek   R1 (and distills), V3:   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>N
//                                       \n```json\n{..}\n```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
//              V3.1:                    ...<｜tool▁call▁begin｜>N<｜tool▁sep｜>{..}<｜tool▁call▁end｜>...
//   kimi_k2    Kimi-K2:                 <|tool_calls_section_begin|><|tool_call_begin|>functions.N:0
//                                       <|tool_call_argument_begin|>{..}<|tool_call_end|>...
//   mistral    Mistral v3 / Nemo:       [TOOL_CALLS][{"name": N, "arguments": {..}}, ...]
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clusterctl::chat {

enum class ToolCallFormat { none, hermes, llama3, deepseek, kimi_k2, mistral };

// The family of a chat template (tokenizer.chat_template), by the markers its source renders;
// none when it renders no tool calls this parser reads (then requests with tools are refused).
ToolCallFormat detect_tool_call_format(std::string_view template_source);
const char* tool_call_format_name(ToolCallFormat format);

struct ToolCall {
  std::string id;  // the model's own (Kimi-K2) or empty (the protocol assigns one)
  std::string name;
  std::string arguments;  // a JSON object, as text
};

// Splits streamed text into content and tool calls. Content is released as soon as it cannot be
// the start of a call; from a call's start marker on, text is held and parsed at finish(). Text
// after the marker that does not parse as calls is released as content then, so nothing the model
// wrote is lost.
class ToolCallParser {
 public:
  explicit ToolCallParser(ToolCallFormat format);

  // Adds generated text; returns the content now safe to send.
  std::string feed(std::string_view piece);
  // At the end: the content still held (empty when calls parsed) and the calls.
  struct Result {
    std::string content;
    std::vector<ToolCall> calls;
  };
  Result finish();

  // While streaming: the calls written out completely so far (a closed <tool_call> block, a
  // DeepSeek or Kimi call up to its end marker), so they can be sent before the answer ends;
  // finish() returns the rest. Llama 3 and Mistral calls come at finish() only (a Llama answer
  // is a call only when all of it is).
  std::vector<ToolCall> take_complete();

  // Whether the text so far has entered a tool call (the rest is held until finish()).
  bool in_call() const { return in_call_; }

 private:
  ToolCallFormat format_;
  std::vector<std::string> markers_;  // where a call section starts
  std::string pending_;               // content that may be a marker's start
  std::string held_;                  // from the marker on
  bool in_call_ = false;
  bool released_any_ = false;  // content sent (llama3: a JSON call must be the whole answer)
  bool taken_any_ = false;     // take_complete() returned calls
};

// Parses a whole answer (feed + finish).
ToolCallParser::Result parse_tool_calls(ToolCallFormat format, std::string_view text);

// OpenAI-style messages for a template (ChatTemplate::render applies it): an assistant message's
// `tool_calls[].function.arguments` given as a JSON string becomes the object (templates print it
// with `tojson`); with `null_content_as_empty`, null content beside tool calls becomes "".
nlohmann::ordered_json messages_for_template(const nlohmann::ordered_json& messages, bool null_content_as_empty);

}  // namespace clusterctl::chat
