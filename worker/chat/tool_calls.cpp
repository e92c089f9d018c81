#include "worker/chat/tool_calls.h"

#include <algorithm>

namespace clusterctl::chat {

namespace {

using Json = nlohmann::ordered_json;

// DeepSeek's markers use U+FF5C (fullwidth vertical line) and U+2581 (lower one eighth block).
constexpr std::string_view kDeepSeekCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kDeepSeekCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kDeepSeekCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kDeepSeekCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kDeepSeekSep = "<｜tool▁sep｜>";
constexpr std::string_view kKimiSectionBegin = "<|tool_calls_section_begin|>";
constexpr std::string_view kKimiSectionEnd = "<|tool_calls_section_end|>";
constexpr std::string_view kKimiCallBegin = "<|tool_call_begin|>";
constexpr std::string_view kKimiArgsBegin = "<|tool_call_argument_begin|>";
constexpr std::string_view kKimiCallEnd = "<|tool_call_end|>";
constexpr std::string_view kHermesBegin = "<tool_call>";
constexpr std::string_view kHermesEnd = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralCalls = "[TOOL_CALLS]";
constexpr std::string_view kMistralArgs = "[ARGS]";

bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// The end (one past) of the JSON value starting at s[0] ('{' or '['), by bracket matching outside
// strings; npos when it does not close.
size_t json_value_end(std::string_view s) {
  int depth = 0;
  bool in_string = false, escape = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escape)
        escape = false;
      else if (c == '\\')
        escape = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

std::optional<Json> parse_json(std::string_view text) {
  Json v = Json::parse(text.begin(), text.end(), nullptr, false);
  if (v.is_discarded()) return std::nullopt;
  return v;
}

// Arguments as a JSON object's text; a string holding an object (double-encoded) is accepted.
std::optional<std::string> arguments_text(const Json& args) {
  if (args.is_object()) return args.dump();
  if (args.is_string()) {
    auto inner = parse_json(args.get<std::string>());
    if (inner && inner->is_object()) return inner->dump();
  }
  return std::nullopt;
}

std::optional<std::string> arguments_text(std::string_view text) {
  auto v = parse_json(trim(text));
  if (!v) return std::nullopt;
  return arguments_text(*v);
}

// {"name": N, "arguments"|"parameters": {..}} (Hermes, Llama 3, Mistral; an "id" is kept).
std::optional<ToolCall> call_from_object(const Json& o) {
  if (!o.is_object()) return std::nullopt;
  auto name = o.find("name");
  if (name == o.end() || !name->is_string() || name->get<std::string>().empty()) return std::nullopt;
  auto args = o.find("arguments");
  if (args == o.end()) args = o.find("parameters");
  ToolCall call;
  call.name = name->get<std::string>();
  if (args == o.end() || args->is_null()) {
    call.arguments = "{}";
  } else {
    auto text = arguments_text(*args);
    if (!text) return std::nullopt;
    call.arguments = *text;
  }
  if (auto id = o.find("id"); id != o.end() && id->is_string()) call.id = id->get<std::string>();
  return call;
}

struct Parsed {
  std::vector<ToolCall> calls;
  std::string trailing;  // content after the calls
};

std::optional<Parsed> parse_hermes(std::string_view s) {
  Parsed out;
  size_t at = 0;
  while (true) {
    const size_t begin = s.find(kHermesBegin, at);
    if (begin == std::string_view::npos) break;
    if (!trim(s.substr(at, begin - at)).empty()) return std::nullopt;  // text between calls
    const size_t body = begin + kHermesBegin.size();
    const size_t end = s.find(kHermesEnd, body);
    auto object = parse_json(trim(s.substr(body, end == std::string_view::npos ? s.npos : end - body)));
    if (!object) return std::nullopt;
    auto call = call_from_object(*object);
    if (!call) return std::nullopt;
    out.calls.push_back(std::move(*call));
    at = end == std::string_view::npos ? s.size() : end + kHermesEnd.size();
  }
  if (out.calls.empty()) return std::nullopt;
  out.trailing = std::string(trim(s.substr(at)));
  return out;
}

// A Python literal as Llama 3's built-in tool calls write arguments: a quoted string, a number,
// True/False/None. Advances `s` past it.
std::optional<Json> python_literal(std::string_view& s) {
  if (s.empty()) return std::nullopt;
  if (s.front() == '"' || s.front() == '\'') {
    const char quote = s.front();
    std::string text;
    size_t i = 1;
    for (; i < s.size() && s[i] != quote; ++i) {
      if (s[i] == '\\' && i + 1 < s.size()) {
        const char e = s[++i];
        text += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      } else {
        text += s[i];
      }
    }
    if (i >= s.size()) return std::nullopt;
    s.remove_prefix(i + 1);
    return Json(text);
  }
  size_t n = 0;
  while (n < s.size() && s[n] != ',' && s[n] != ')') ++n;
  const std::string_view word = trim(s.substr(0, n));
  s.remove_prefix(n);
  if (word == "True") return Json(true);
  if (word == "False") return Json(false);
  if (word == "None") return Json(nullptr);
  auto number = parse_json(word);
  if (number && number->is_number()) return number;
  return std::nullopt;
}

// Llama 3.1's built-in tools: <|python_tag|>NAME.call(key="value", n=1).
std::optional<ToolCall> parse_builtin_call(std::string_view s) {
  const size_t dot = s.find(".call(");
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  ToolCall call;
  call.name = std::string(s.substr(0, dot));
  if (call.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
      std::string::npos)
    return std::nullopt;
  s = trim(s.substr(dot + 6));
  Json args = Json::object();
  while (!s.empty() && s.front() != ')') {
    const size_t eq = s.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string key(trim(s.substr(0, eq)));
    s = trim(s.substr(eq + 1));
    auto value = python_literal(s);
    if (key.empty() || !value) return std::nullopt;
    args[key] = std::move(*value);
    s = trim(s);
    if (!s.empty() && s.front() == ',') s = trim(s.substr(1));
  }
  if (s.empty() || !trim(s.substr(1)).empty()) return std::nullopt;  // unclosed, or text after the call
  call.arguments = args.dump();
  return call;
}

// Llama 3.x: one or more JSON objects (separated by whitespace or ';'), after an optional <|python_tag|>,
// or a built-in tool's NAME.call(...) after <|python_tag|>.
std::optional<Parsed> parse_llama3(std::string_view s) {
  s = trim(s);
  Parsed out;
  if (s.substr(0, kPythonTag.size()) == kPythonTag) {
    s = trim(s.substr(kPythonTag.size()));
    if (!s.empty() && s.front() != '{') {
      auto call = parse_builtin_call(s);
      if (!call) return std::nullopt;
      out.calls.push_back(std::move(*call));
      return out;
    }
  }
  while (!s.empty()) {
    if (s.front() != '{') return std::nullopt;
    const size_t end = json_value_end(s);
    if (end == std::string_view::npos) return std::nullopt;
    auto object = parse_json(s.substr(0, end));
    if (!object) return std::nullopt;
    auto call = call_from_object(*object);
    if (!call) return std::nullopt;
    out.calls.push_back(std::move(*call));
    s = trim(s.substr(end));
    if (!s.empty() && s.front() == ';') s = trim(s.substr(1));
  }
  if (out.calls.empty()) return std::nullopt;
  return out;
}

// DeepSeek: R1/V3 put "function<sep>NAME\n```json\n{..}\n```" in a call, V3.1 "NAME<sep>{..}".
std::optional<Parsed> parse_deepseek(std::string_view s) {
  Parsed out;
  size_t at = 0;
  while (true) {
    const size_t begin = s.find(kDeepSeekCallBegin, at);
    if (begin == std::string_view::npos) break;
    const size_t body = begin + kDeepSeekCallBegin.size();
    size_t end = s.find(kDeepSeekCallEnd, body);
    const std::string_view inner = s.substr(body, end == std::string_view::npos ? s.npos : end - body);
    const size_t sep = inner.find(kDeepSeekSep);
    if (sep == std::string_view::npos) return std::nullopt;
    std::string_view head = trim(inner.substr(0, sep));
    std::string_view rest = inner.substr(sep + kDeepSeekSep.size());
    ToolCall call;
    if (head == "function") {
      const size_t newline = rest.find('\n');
      if (newline == std::string_view::npos) return std::nullopt;
      call.name = std::string(trim(rest.substr(0, newline)));
      rest = trim(rest.substr(newline + 1));
      if (rest.substr(0, 3) == "```") {
        rest = rest.substr(rest.find('\n') == std::string_view::npos ? 3 : rest.find('\n') + 1);
        const size_t fence = rest.rfind("```");
        if (fence != std::string_view::npos) rest = rest.substr(0, fence);
      }
    } else {
      call.name = std::string(head);
    }
    auto args = arguments_text(rest);
    if (call.name.empty() || !args) return std::nullopt;
    call.arguments = *args;
    out.calls.push_back(std::move(call));
    at = end == std::string_view::npos ? s.size() : end + kDeepSeekCallEnd.size();
  }
  if (out.calls.empty()) return std::nullopt;
  std::string_view tail = s.substr(at);
  if (const size_t close = tail.find(kDeepSeekCallsEnd); close != std::string_view::npos) {
    if (!trim(tail.substr(0, close)).empty()) return std::nullopt;
    tail = tail.substr(close + kDeepSeekCallsEnd.size());
  }
  out.trailing = std::string(trim(tail));
  return out;
}

// Kimi-K2: the call id is "functions.NAME:INDEX".
std::optional<Parsed> parse_kimi(std::string_view s) {
  Parsed out;
  size_t at = 0;
  while (true) {
    const size_t begin = s.find(kKimiCallBegin, at);
    if (begin == std::string_view::npos) break;
    const size_t body = begin + kKimiCallBegin.size();
    const size_t end = s.find(kKimiCallEnd, body);
    const std::string_view inner = s.substr(body, end == std::string_view::npos ? s.npos : end - body);
    const size_t args_at = inner.find(kKimiArgsBegin);
    if (args_at == std::string_view::npos) return std::nullopt;
    ToolCall call;
    call.id = std::string(trim(inner.substr(0, args_at)));
    std::string_view name = call.id;
    if (name.substr(0, 10) == "functions.") name = name.substr(10);
    if (const size_t colon = name.rfind(':'); colon != std::string_view::npos) name = name.substr(0, colon);
    call.name = std::string(name);
    auto args = arguments_text(inner.substr(args_at + kKimiArgsBegin.size()));
    if (call.name.empty() || !args) return std::nullopt;
    call.arguments = *args;
    out.calls.push_back(std::move(call));
    at = end == std::string_view::npos ? s.size() : end + kKimiCallEnd.size();
  }
  if (out.calls.empty()) return std::nullopt;
  std::string_view tail = s.substr(at);
  if (const size_t close = tail.find(kKimiSectionEnd); close != std::string_view::npos) {
    tail = tail.substr(close + kKimiSectionEnd.size());
  }
  out.trailing = std::string(trim(tail));
  return out;
}

// Mistral: [TOOL_CALLS][{...}, ...] (v3, Nemo) or [TOOL_CALLS]NAME[ARGS]{...} (Small 3.2 and later).
std::optional<Parsed> parse_mistral(std::string_view s) {
  Parsed out;
  while (true) {
    s = trim(s);
    if (s.substr(0, kMistralCalls.size()) != kMistralCalls) break;
    s = trim(s.substr(kMistralCalls.size()));
    if (!s.empty() && s.front() == '[') {
      const size_t end = json_value_end(s);
      auto list = end == std::string_view::npos ? std::nullopt : parse_json(s.substr(0, end));
      if (!list || !list->is_array()) return std::nullopt;
      for (const auto& o : *list) {
        auto call = call_from_object(o);
        if (!call) return std::nullopt;
        out.calls.push_back(std::move(*call));
      }
      s = s.substr(end);
    } else {
      const size_t args = s.find(kMistralArgs);
      if (args == std::string_view::npos) return std::nullopt;
      ToolCall call;
      call.name = std::string(trim(s.substr(0, args)));
      std::string_view rest = trim(s.substr(args + kMistralArgs.size()));
      const size_t end = rest.empty() || rest.front() != '{' ? std::string_view::npos : json_value_end(rest);
      if (end == std::string_view::npos) return std::nullopt;
      auto text = arguments_text(rest.substr(0, end));
      if (call.name.empty() || !text) return std::nullopt;
      call.arguments = *text;
      out.calls.push_back(std::move(call));
      s = rest.substr(end);
    }
  }
  if (out.calls.empty()) return std::nullopt;
  out.trailing = std::string(s);
  return out;
}

std::optional<Parsed> parse_held(ToolCallFormat format, std::string_view s) {
  switch (format) {
    case ToolCallFormat::hermes:
      return parse_hermes(s);
    case ToolCallFormat::llama3:
      return parse_llama3(s);
    case ToolCallFormat::deepseek:
      return parse_deepseek(s);
    case ToolCallFormat::kimi_k2:
      return parse_kimi(s);
    case ToolCallFormat::mistral:
      return parse_mistral(s);
    case ToolCallFormat::none:
      break;
  }
  return std::nullopt;
}

}  // namespace

ToolCallFormat detect_tool_call_format(std::string_view src) {
  if (contains(src, kKimiSectionBegin) && contains(src, kKimiCallBegin)) return ToolCallFormat::kimi_k2;
  if (contains(src, kDeepSeekCallBegin)) return ToolCallFormat::deepseek;
  if (contains(src, kMistralCalls)) return ToolCallFormat::mistral;
  // Qwen3-Coder writes <tool_call><function=N><parameter=..> (XML arguments): not this format.
  if (contains(src, kHermesBegin) && !contains(src, "<function=")) return ToolCallFormat::hermes;
  if (contains(src, "<|start_header_id|>") && (contains(src, kPythonTag) || contains(src, "\"parameters\": ")))
    return ToolCallFormat::llama3;
  return ToolCallFormat::none;
}

const char* tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::hermes:
      return "hermes";
    case ToolCallFormat::llama3:
      return "llama3";
    case ToolCallFormat::deepseek:
      return "deepseek";
    case ToolCallFormat::kimi_k2:
      return "kimi_k2";
    case ToolCallFormat::mistral:
      return "mistral";
    case ToolCallFormat::none:
      break;
  }
  return "none";
}

ToolCallParser::ToolCallParser(ToolCallFormat format) : format_(format) {
  switch (format) {
    case ToolCallFormat::hermes:
      markers_ = {std::string(kHermesBegin)};
      break;
    case ToolCallFormat::llama3:
      markers_ = {std::string(kPythonTag)};
      break;
    case ToolCallFormat::deepseek:
      markers_ = {std::string(kDeepSeekCallsBegin), std::string(kDeepSeekCallBegin)};
      break;
    case ToolCallFormat::kimi_k2:
      markers_ = {std::string(kKimiSectionBegin), std::string(kKimiCallBegin)};
      break;
    case ToolCallFormat::mistral:
      markers_ = {std::string(kMistralCalls)};
      break;
    case ToolCallFormat::none:
      break;
  }
}

std::string ToolCallParser::feed(std::string_view piece) {
  if (in_call_) {
    held_ += piece;
    return {};
  }
  pending_ += piece;
  if (!released_any_) {
    // Leading whitespace waits for the first other character (dropped when a call follows); a
    // Llama 3 JSON call is the whole answer.
    const std::string_view t = trim(pending_);
    if (t.empty()) return {};
    if (format_ == ToolCallFormat::llama3 && t.front() == '{') {
      in_call_ = true;
      held_ = std::move(pending_);
      pending_.clear();
      return {};
    }
  }
  size_t first = std::string::npos;
  for (const auto& m : markers_) first = std::min(first, pending_.find(m));
  std::string out;
  if (first != std::string::npos) {
    out = pending_.substr(0, first);
    if (!released_any_ && trim(out).empty()) out.clear();
    held_ = pending_.substr(first);
    pending_.clear();
    in_call_ = true;
  } else {
    // Hold back the longest tail that may still grow into a marker.
    size_t keep = 0;
    for (const auto& m : markers_) {
      for (size_t k = std::min(m.size() - 1, pending_.size()); k > keep; --k) {
        if (pending_.compare(pending_.size() - k, k, m, 0, k) == 0) {
          keep = k;
          break;
        }
      }
    }
    out = pending_.substr(0, pending_.size() - keep);
    pending_.erase(0, pending_.size() - keep);
  }
  if (!out.empty()) released_any_ = true;
  return out;
}

namespace {

// The markers of the formats whose calls close one by one: section start (optional), call start, call end.
struct CallMarkers {
  std::string_view section, begin, end, section_end;
};
std::optional<CallMarkers> call_markers(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::hermes:
      return CallMarkers{{}, kHermesBegin, kHermesEnd, {}};
    case ToolCallFormat::deepseek:
      return CallMarkers{kDeepSeekCallsBegin, kDeepSeekCallBegin, kDeepSeekCallEnd, kDeepSeekCallsEnd};
    case ToolCallFormat::kimi_k2:
      return CallMarkers{kKimiSectionBegin, kKimiCallBegin, kKimiCallEnd, kKimiSectionEnd};
    default:
      return std::nullopt;
  }
}

size_t skip_space(std::string_view s, size_t at) {
  while (at < s.size() && (s[at] == ' ' || s[at] == '\n' || s[at] == '\r' || s[at] == '\t')) ++at;
  return at;
}

}  // namespace

std::vector<ToolCall> ToolCallParser::take_complete() {
  std::vector<ToolCall> calls;
  const auto markers = call_markers(format_);
  if (!in_call_ || !markers) return calls;
  const std::string_view view = held_;
  size_t at = skip_space(view, 0);
  if (!markers->section.empty() && view.substr(at, markers->section.size()) == markers->section) {
    at = skip_space(view, at + markers->section.size());
  }
  size_t consumed = 0;
  while (view.substr(at, markers->begin.size()) == markers->begin) {
    const size_t end = view.find(markers->end, at + markers->begin.size());
    if (end == std::string_view::npos) break;
    auto parsed = parse_held(format_, view.substr(at, end + markers->end.size() - at));
    if (!parsed || parsed->calls.size() != 1 || !parsed->trailing.empty()) break;
    calls.push_back(std::move(parsed->calls[0]));
    consumed = end + markers->end.size();
    at = skip_space(view, consumed);
  }
  if (!calls.empty()) {
    held_.erase(0, consumed);
    taken_any_ = true;
  }
  return calls;
}

ToolCallParser::Result ToolCallParser::finish() {
  Result r;
  if (!in_call_) {
    r.content = std::move(pending_);
    pending_.clear();
    return r;
  }
  if (auto parsed = parse_held(format_, held_)) {
    r.calls = std::move(parsed->calls);
    r.content = std::move(parsed->trailing);
  } else if (taken_any_) {
    // Calls went out already: what is left after them, less the section's closing marker, is text.
    std::string_view rest = trim(held_);
    const auto markers = call_markers(format_);
    if (markers && !markers->section_end.empty() && rest.substr(0, markers->section_end.size()) == markers->section_end)
      rest = trim(rest.substr(markers->section_end.size()));
    r.content = std::string(rest);
  } else {
    r.content = held_;  // not calls after all: the model's text as written
  }
  held_.clear();
  in_call_ = false;
  return r;
}

ToolCallParser::Result parse_tool_calls(ToolCallFormat format, std::string_view text) {
  ToolCallParser parser(format);
  std::string content = parser.feed(text);
  ToolCallParser::Result r = parser.finish();
  r.content = content + r.content;
  return r;
}

nlohmann::ordered_json messages_for_template(const nlohmann::ordered_json& messages, bool null_content_as_empty) {
  Json out = messages;
  for (auto& m : out) {
    if (!m.is_object()) continue;
    if (!m.contains("tool_calls") || !m["tool_calls"].is_array()) continue;
    // (Insertion into an ordered_json object moves its members: look tool_calls up after it.)
    if (!m.contains("content")) m["content"] = nullptr;
    if (null_content_as_empty && m["content"].is_null()) m["content"] = "";
    for (auto& call : m["tool_calls"]) {
      if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
      Json& function = call["function"];
      if (auto args = function.find("arguments"); args != function.end() && args->is_string()) {
        auto object = parse_json(args->get<std::string>());
        if (object && object->is_object()) *args = *object;
      }
    }
  }
  return out;
}

}  // namespace clusterctl::chat
