#include "worker/server/anthropic_protocol.h"

#include <algorithm>

#include "worker/server/request_fields.h"
#include "worker/server/sampling_fields.h"
#include "worker/server/tool_requests.h"

namespace clusterctl::server {

namespace {

inline constexpr double kAnthropicTemperatureMax = 1;  // Anthropic's range is 0 .. 1

void check_fields(const Json& body) {
  static const char* const kKnown[] = {"model",       "max_tokens", "messages", "system", "stop_sequences",
                                       "temperature", "top_p",      "top_k",    "stream", "tools",
                                       "tool_choice", "metadata",   "thinking"};
  for (const auto& [key, value] : body.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      throw invalid_request(
          "'" + key.substr(0, 64) +
              "' is not supported by this server; supported fields: model, max_tokens, messages, "
              "system, stop_sequences, temperature, top_p, top_k, stream, tools, tool_choice, metadata "
              "(docs/api.md)",
          key, "unsupported_field");
    }
  }
  if (const Json* t = field(body, "thinking")) {
    if (!t->is_object() || t->value("type", "") != "disabled") {
      throw invalid_request("'thinking' is not supported (no separate reasoning output); leave it out", "thinking",
                            "unsupported_field");
    }
  }
  // metadata.user_id identifies the end user to Anthropic; this server keeps no per-user state.
  if (const Json* m = field(body, "metadata"); m && !m->is_object()) wrong_type("metadata", "an object");
}

// Text blocks ([{"type": "text", "text"}], cache_control allowed: prompt caching is a hint) or a string.
std::string text_of(const Json& content, const std::string& param) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) wrong_type(param, "a string or an array of text blocks");
  std::string text;
  for (size_t k = 0; k < content.size(); ++k) {
    const Json& b = content[k];
    const std::string p = param + "[" + std::to_string(k) + "]";
    if (!b.is_object() || b.value("type", "") != "text" || !b.contains("text") || !b["text"].is_string()) {
      throw invalid_request(
          p + " must be a text block {\"type\": \"text\", \"text\": ...} (this server reads text only)", p,
          "invalid_value");
    }
    if (!text.empty()) text += "\n";
    text += b["text"].get<std::string>();
  }
  return text;
}

// Anthropic messages -> OpenAI-shaped ones for the chat template: tool_use blocks become an
// assistant's tool_calls, tool_result blocks `tool` messages (before the user's text).
Json template_messages(const Json& body) {
  Json out = Json::array();
  if (const Json* system = field(body, "system"))
    out.push_back(Json{{"role", "system"}, {"content", text_of(*system, "system")}});
  const Json* messages = field(body, "messages");
  if (!messages) throw invalid_request("messages: Field required", "messages", "missing_required_parameter");
  if (!messages->is_array() || messages->empty()) wrong_type("messages", "a non-empty array of {role, content}");
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    const std::string param = "messages." + std::to_string(i);
    if (!m.is_object()) wrong_type(param, "an object {role, content}");
    const std::string role = m.value("role", "");
    if (role != "user" && role != "assistant") {
      throw invalid_request(param + ".role must be \"user\" or \"assistant\"", param + ".role", "invalid_value");
    }
    const Json* content = field(m, "content");
    if (!content)
      throw invalid_request(param + ".content: Field required", param + ".content", "missing_required_parameter");
    if (content->is_string()) {
      out.push_back(Json{{"role", role}, {"content", *content}});
      continue;
    }
    if (!content->is_array()) wrong_type(param + ".content", "a string or an array of content blocks");
    std::string text;
    Json calls = Json::array();
    for (size_t k = 0; k < content->size(); ++k) {
      const Json& b = (*content)[k];
      const std::string p = param + ".content." + std::to_string(k);
      const std::string type = b.is_object() ? b.value("type", "") : "";
      if (type == "text" && b.contains("text") && b["text"].is_string()) {
        text += b["text"].get<std::string>();
      } else if (type == "tool_use" && role == "assistant") {
        if (!b.contains("id") || !b["id"].is_string() || !b.contains("name") || !b["name"].is_string())
          wrong_type(p, "a tool_use block {id, name, input}");
        const Json input = b.contains("input") ? b["input"] : Json::object();
        if (!input.is_object()) wrong_type(p + ".input", "an object");
        calls.push_back(
            Json{{"id", b["id"]}, {"type", "function"}, {"function", {{"name", b["name"]}, {"arguments", input}}}});
      } else if (type == "tool_result" && role == "user") {
        if (!b.contains("tool_use_id") || !b["tool_use_id"].is_string()) wrong_type(p + ".tool_use_id", "a string");
        std::string result =
            b.contains("content") && !b["content"].is_null() ? text_of(b["content"], p + ".content") : "";
        if (b.value("is_error", false)) result = "Error: " + result;
        out.push_back(Json{{"role", "tool"}, {"tool_call_id", b["tool_use_id"]}, {"content", result}});
      } else {
        throw invalid_request(p + ": a " + role + " message holds text" +
                                  (role == "user" ? " and tool_result" : " and tool_use") +
                                  " blocks on this server (no images, documents or thinking)",
                              p + ".type", "invalid_value");
      }
    }
    if (role == "assistant") {
      Json message = {{"role", "assistant"}, {"content", text}};
      if (!calls.empty()) message["tool_calls"] = std::move(calls);
      out.push_back(std::move(message));
    } else if (!text.empty()) {
      out.push_back(Json{{"role", "user"}, {"content", text}});
    }
  }
  return out;
}

// Anthropic tools {name, description, input_schema} -> OpenAI's shape for the template.
ToolOffer tool_offer(const Json& body, const chat::ChatTemplate& chat_template) {
  ToolOffer offer;
  std::string choice = "auto";
  if (const Json* c = field(body, "tool_choice")) {
    if (!c->is_object() || !c->contains("type") || !(*c)["type"].is_string())
      wrong_type("tool_choice", "an object {\"type\": \"auto\" | \"none\"}");
    choice = (*c)["type"].get<std::string>();
    if (choice == "any" || choice == "tool") {
      throw invalid_request("tool_choice type '" + choice +
                                "' is not supported: forcing a tool call needs constrained sampling, which this server "
                                "does not do for tools; use \"auto\" (the model decides) or \"none\"",
                            "tool_choice", "unsupported_value");
    }
    if (choice != "auto" && choice != "none") {
      throw invalid_request("tool_choice.type must be auto, any, tool or none", "tool_choice", "invalid_value");
    }
    if (auto d = c->find("disable_parallel_tool_use"); d != c->end() && !d->is_null()) {
      if (!d->is_boolean()) wrong_type("tool_choice.disable_parallel_tool_use", "a boolean");
      offer.parallel = !d->get<bool>();
    }
  }
  const Json* tools = field(body, "tools");
  if (!tools) return offer;
  if (!tools->is_array()) wrong_type("tools", "an array of {name, description, input_schema}");
  Json openai = Json::array();
  for (size_t i = 0; i < tools->size(); ++i) {
    const Json& t = (*tools)[i];
    const std::string p = "tools." + std::to_string(i);
    if (!t.is_object()) wrong_type(p, "an object {name, description, input_schema}");
    if (t.contains("type") && t["type"] != "custom") {
      throw invalid_request(p + ": server tools (type " + t["type"].dump().substr(0, 64) +
                                ") are not supported; define the tool with name, description and input_schema",
                            p + ".type", "unsupported_value");
    }
    if (!t.contains("name") || !t["name"].is_string() || t["name"].get<std::string>().empty())
      wrong_type(p + ".name", "a non-empty string");
    if (!t.contains("input_schema") || !t["input_schema"].is_object())
      wrong_type(p + ".input_schema", "a JSON Schema object");
    Json fn = {{"name", t["name"]}};
    if (t.contains("description")) {
      if (!t["description"].is_string()) wrong_type(p + ".description", "a string");
      fn["description"] = t["description"];
    }
    fn["parameters"] = t["input_schema"];
    openai.push_back(Json{{"type", "function"}, {"function", fn}});
  }
  if (openai.empty() || choice == "none") return offer;
  offer.format = require_tool_format(chat_template, "tools");
  offer.tools = std::move(openai);
  return offer;
}

std::string event(const char* name, const Json& data) {
  return std::string("event: ") + name + "\ndata: " + data.dump(-1, ' ', false, Json::error_handler_t::replace) +
         "\n\n";
}

class AnthropicWriter : public ResponseWriter {
 public:
  AnthropicWriter(std::string id, std::string model, std::vector<std::string> stop_sequences)
      : id_(std::move(id)), model_(std::move(model)), stop_sequences_(std::move(stop_sequences)) {}

  std::string stream_begin() override {
    Json message = envelope();
    message["content"] = Json::array();
    message["stop_reason"] = nullptr;
    message["stop_sequence"] = nullptr;
    message["usage"] = Json{{"input_tokens", 0}, {"output_tokens", 0}};  // known at the end (message_delta)
    return event("message_start", Json{{"type", "message_start"}, {"message", message}});
  }

  std::string stream_text(const std::string& text, std::vector<int32_t>& token_ids) override {
    token_ids.clear();
    std::string out;
    if (!text_open_) {
      text_open_ = true;
      out += event("content_block_start", Json{{"type", "content_block_start"},
                                               {"index", blocks_},
                                               {"content_block", {{"type", "text"}, {"text", ""}}}});
    }
    out += event(
        "content_block_delta",
        Json{{"type", "content_block_delta"}, {"index", blocks_}, {"delta", {{"type", "text_delta"}, {"text", text}}}});
    return out;
  }

  std::string stream_tool_calls(const std::vector<chat::ToolCall>& calls, size_t) override {
    std::string out = close_text();
    for (const auto& call : calls) {
      out += event("content_block_start",
                   Json{{"type", "content_block_start"},
                        {"index", blocks_},
                        {"content_block",
                         {{"type", "tool_use"}, {"id", call.id}, {"name", call.name}, {"input", Json::object()}}}});
      out += event("content_block_delta",
                   Json{{"type", "content_block_delta"},
                        {"index", blocks_},
                        {"delta", {{"type", "input_json_delta"}, {"partial_json", call.arguments}}}});
      out += event("content_block_stop", Json{{"type", "content_block_stop"}, {"index", blocks_++}});
    }
    return out;
  }

  std::string stream_end(const Outcome& outcome, std::vector<int32_t>& token_ids) override {
    token_ids.clear();
    std::string out = close_text();
    if (outcome.tool_calls.size() > outcome.streamed_calls) {
      out += stream_tool_calls({outcome.tool_calls.begin() + outcome.streamed_calls, outcome.tool_calls.end()}, 0);
    }
    const auto [reason, sequence] = stop_reason(outcome);
    out += event("message_delta", Json{{"type", "message_delta"},
                                       {"delta", {{"stop_reason", reason}, {"stop_sequence", sequence}}},
                                       {"usage", usage(outcome)}});
    out += event("message_stop", Json{{"type", "message_stop"}});
    return out;
  }

  std::string stream_error(const ApiError& error) override {
    return event("error", error_body(Dialect::anthropic, error));
  }

  std::string whole(const std::string& text, const Outcome& outcome, const std::vector<int32_t>&) override {
    Json message = envelope();
    Json content = Json::array();
    if (!text.empty() || outcome.tool_calls.empty()) content.push_back(Json{{"type", "text"}, {"text", text}});
    for (const auto& call : outcome.tool_calls) {
      content.push_back(
          Json{{"type", "tool_use"}, {"id", call.id}, {"name", call.name}, {"input", Json::parse(call.arguments)}});
    }
    message["content"] = std::move(content);
    const auto [reason, sequence] = stop_reason(outcome);
    message["stop_reason"] = reason;
    message["stop_sequence"] = sequence;
    message["usage"] = usage(outcome);
    return message.dump(-1, ' ', false, Json::error_handler_t::replace);
  }

 private:
  std::string close_text() {
    if (!text_open_) return {};
    text_open_ = false;
    return event("content_block_stop", Json{{"type", "content_block_stop"}, {"index", blocks_++}});
  }

  Json envelope() const { return Json{{"id", id_}, {"type", "message"}, {"role", "assistant"}, {"model", model_}}; }

  std::pair<std::string, Json> stop_reason(const Outcome& o) const {
    if (!o.tool_calls.empty()) return {"tool_use", nullptr};
    // A stop string the prompt format implies (not the client's) ends the turn like the end token.
    if (o.stop_sequence &&
        std::find(stop_sequences_.begin(), stop_sequences_.end(), *o.stop_sequence) != stop_sequences_.end())
      return {"stop_sequence", *o.stop_sequence};
    if (o.reason == FinishReason::length && !o.stop_sequence) return {"max_tokens", nullptr};
    return {"end_turn", nullptr};
  }

  static Json usage(const Outcome& o) {
    // Anthropic counts prompt tokens read from the cache apart from input_tokens (the three add up
    // to the prompt); the cache fills itself, so nothing is billed as cache creation.
    return Json{{"input_tokens", o.usage.prompt_tokens - o.usage.cached_tokens},
                {"output_tokens", o.usage.completion_tokens},
                {"cache_creation_input_tokens", 0},
                {"cache_read_input_tokens", o.usage.cached_tokens}};
  }

  std::string id_, model_;
  std::vector<std::string> stop_sequences_;
  bool text_open_ = false;
  int blocks_ = 0;
};

}  // namespace

PreparedRequest prepare_anthropic(const std::string& body_text, const ModelInfo& model,
                                  const chat::ChatTemplate& chat_template, const ProtocolLimits& limits,
                                  const std::string& id) {
  const Json body = parse_request_body(body_text);
  check_fields(body);
  const Json* m = field(body, "model");
  if (!m) throw invalid_request("model: Field required", "model", "missing_required_parameter");
  if (!m->is_string()) wrong_type("model", "a string");
  if (m->get<std::string>() != model.id) {
    throw ApiError(404,
                   "model: " + m->get<std::string>().substr(0, 200) + " does not exist; this server serves '" +
                       model.id + "' (GET /v1/models)",
                   "invalid_request_error", "model", "model_not_found");
  }
  const Json* max_tokens = field(body, "max_tokens");
  if (!max_tokens) throw invalid_request("max_tokens: Field required", "max_tokens", "missing_required_parameter");

  PreparedRequest prepared;
  GenerationRequest& g = prepared.generation;
  g.max_tokens = static_cast<int>(
      integer_in(*max_tokens, "max_tokens", 1, limits.max_tokens_limit,
                 "between 1 and " + std::to_string(limits.max_tokens_limit) + " (this server's limit)"));
  g.sampling.temperature = static_cast<float>(number_in(body, "temperature", 0, kAnthropicTemperatureMax, 1.0));
  g.sampling.top_p = static_cast<float>(number_in(body, "top_p", kTopPMin, kTopPMax, 1.0));
  if (const Json* k = field(body, "top_k"))
    g.sampling.top_k = static_cast<int>(integer_in(*k, "top_k", 0, kMaxTopK, "an integer of 0 (off) or more"));
  std::vector<std::string> stops;
  if (const Json* s = field(body, "stop_sequences")) {
    if (!s->is_array() || s->size() > kMaxStopStrings)
      wrong_type("stop_sequences", "an array of up to " + std::to_string(kMaxStopStrings) + " strings");
    for (const auto& x : *s) {
      if (!x.is_string() || x.get_ref<const std::string&>().size() > kMaxStopBytes ||
          x.get_ref<const std::string&>().empty())
        wrong_type("stop_sequences", "non-empty strings of at most " + std::to_string(kMaxStopBytes) + " bytes");
      stops.push_back(x.get<std::string>());
    }
  }
  g.stop = stops;
  if (const Json* s = field(body, "stream")) {
    if (!s->is_boolean()) wrong_type("stream", "a boolean");
    prepared.stream = s->get<bool>();
  }
  const ToolOffer offer = tool_offer(body, chat_template);
  Json extra = Json::object();
  if (offer.active()) {
    extra["tools"] = offer.tools;
    prepared.tool_format = offer.format;
    prepared.parallel_tool_calls = offer.parallel;
    prepared.tool_id_prefix = "toolu_";
    g.render_special = true;
  }
  const Json messages = template_messages(body);
  render_chat_prompt(chat_template, messages, extra, g);
  prepared.writer = std::make_unique<AnthropicWriter>("msg_" + id, model.id, std::move(stops));
  return prepared;
}

}  // namespace clusterctl::server
